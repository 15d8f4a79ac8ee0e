import { createInterface } from 'node:readline';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Logger } from '@mcp-audit/observability';
import type { UpstreamConfig } from './config.js';

/** Opens one upstream session: a child process per session for stdio, an HTTP session for http. */
export type UpstreamConnector = (upstream: UpstreamConfig) => Transport;

export function createUpstreamConnector(opts: {
  log: Logger;
  /** Resolved `env:NAME` header values per http upstream. */
  headers?: Record<string, Record<string, string>>;
  /** Log the child's stderr at info (else debug). */
  verboseStderr?: boolean;
}): UpstreamConnector {
  return (upstream) => {
    if (upstream.transport === 'http') {
      const headers = opts.headers?.[upstream.name] ?? upstream.headers;
      return new StreamableHTTPClientTransport(new URL(upstream.url), {
        requestInit: { headers },
      });
    }
    const t = new StdioClientTransport({
      // `node` means this Node, whatever PATH says, so the upstream runs on the version we test with.
      command: upstream.command === 'node' ? process.execPath : upstream.command,
      args: upstream.args,
      env: upstream.env,
      ...(upstream.cwd !== undefined ? { cwd: upstream.cwd } : {}),
      // NOTE: piped, never inherited: a stdio gateway's own stdout/stderr must stay clean, and an
      // unread pipe would block the child once its buffer fills.
      stderr: 'pipe',
    });
    const stderr = t.stderr;
    if (stderr) {
      const log = opts.log.child({ upstream: upstream.name });
      const rl = createInterface({ input: stderr as unknown as NodeJS.ReadableStream });
      rl.on('line', (line) => {
        if (opts.verboseStderr) log.info({ line: line.slice(0, 2000) }, 'upstream stderr');
        else log.debug({ line: line.slice(0, 2000) }, 'upstream stderr');
      });
    }
    return t;
  };
}
