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
): ServiceProcess {
  mkdirSync(`${REPO_ROOT}.local/test-logs`, { recursive: true });
  const logFile = `${REPO_ROOT}.local/test-logs/${name}-${tag}.log`;
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [`${REPO_ROOT}services/${name}/dist/src/main.js`], {
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

/** A TCP port free on loopback right now (the OS picks it; closed again before returning). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
