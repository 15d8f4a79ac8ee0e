import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { REPO_ROOT } from './env.js';

export interface ServiceProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
  /** SIGTERM and wait for exit (graceful path). */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  isRunning(): boolean;
}

/** Runs a real service (its compiled main.js) as a child process with the given environment. */
export function startService(
  name: 'ingester' | 'collector' | 'notifier' | 'gateway' | 'detector',
  env: Record<string, string>,
  tag: string,
  /** Node flags before main.js (e.g. --cpu-prof, which NODE_OPTIONS does not allow). */
  nodeArgs: string[] = [],
): ServiceProcess {
  mkdirSync(`${REPO_ROOT}.local/test-logs`, { recursive: true });
  const logFile = `${REPO_ROOT}.local/test-logs/${name}-${tag}.log`;
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [...nodeArgs, `${REPO_ROOT}services/${name}/dist/src/main.js`], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  let running = true;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running = false;
      resolve(code);
    }),
  );
  return {
    child,
    exited,
    logFile,
    isRunning: () => running,
    async stop() {
      if (running) child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (running) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * The port a service started with port 0 got, as it reports it in its log ("Server listening at
 * http://host:port", one line per listener, tagged with the listener's `component`: `ops` for the ops
 * server, `http` for the api, `gateway` for the gateway, …). Tests never pick a "free" port and hand
 * it to another process: that races with every other process on a busy machine.
 */
export async function listeningPort(
  svc: Pick<ServiceProcess, 'logFile' | 'isRunning'>,
  component: string,
  timeoutMs = 120_000,
): Promise<number> {
  const { readFileSync } = await import('node:fs');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(svc.logFile, 'utf8');
    } catch {
      // not written yet
    }
    for (const line of text.split('\n')) {
      if (!line.startsWith('{') || !line.includes('Server listening at')) continue;
      try {
        const rec = JSON.parse(line) as { component?: string; msg?: string };
        const m = /Server listening at https?:\/\/[^\s]+:(\d+)/.exec(rec.msg ?? '');
        if (rec.component === component && m) return Number(m[1]);
      } catch {
        // a partly written line: read again
      }
    }
    if (!svc.isRunning())
      throw new Error(`${svc.logFile}: exited before its ${component} listener reported a port`);
    if (Date.now() > deadline)
      throw new Error(`${svc.logFile}: no "${component}" listener reported within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The TCP ports a process listens on, read from /proc (Linux): for third-party servers started with
 * PORT=0 that do not report the port they got. Waits until at least one listener exists.
 */
export async function listeningPortsOfPid(pid: number, timeoutMs = 60_000): Promise<number[]> {
  const { readFileSync, readdirSync, readlinkSync } = await import('node:fs');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const inodes = new Set<string>();
    try {
      const fdDir = ['/proc', String(pid), 'fd'].join('/');
      for (const fd of readdirSync(fdDir)) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync([fdDir, fd].join('/')));
          if (m) inodes.add(m[1]!);
        } catch {
          // closed meanwhile
        }
      }
    } catch (err) {
      throw new Error(`process ${pid} is gone: ${(err as Error).message}`);
    }
    const ports = new Set<number>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text = '';
      try {
        text = readFileSync(table, 'utf8');
      } catch {
        continue;
      }
      for (const row of text.split('\n').slice(1)) {
        const cols = row.trim().split(/\s+/);
        // local_address is "HEXIP:HEXPORT", st 0A = LISTEN, inode is column 9
        if (cols.length > 9 && cols[3] === '0A' && inodes.has(cols[9]!)) {
          ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
        }
      }
    }
    if (ports.size > 0) return [...ports].sort((a, b) => a - b);
    if (Date.now() > deadline) throw new Error(`process ${pid} listens on no TCP port after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The port, among those a process listens on, that answers `path` with a 2xx: for services logging
 * at `warn` (no "listening" line) that have more than one listener (the gateway: its own and ops).
 */
export async function portAnswering(pid: number, path: string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const port of await listeningPortsOfPid(pid, timeoutMs)) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`).catch(() => undefined);
      if (res?.ok) return port;
    }
    if (Date.now() > deadline)
      throw new Error(`process ${pid}: no port answers ${path} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
