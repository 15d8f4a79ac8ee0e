import type { Logger } from 'pino';

export interface HealthReport {
  ok: boolean;
  details?: Record<string, unknown>;
}

/** Every long-lived part exposes these. */
export interface Lifecycle {
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): HealthReport;
}

/**
 * Ordered shutdown (STYLE.md): steps run in the order given, each awaited, errors logged and the
 * next step still run. Guarded against running twice; an unref'd timer forces exit on a hang.
 */
export function installShutdown(
  log: Logger,
  steps: Array<[name: string, fn: () => Promise<void> | void]>,
  opts: { deadlineMs?: number; exit?: (code: number) => void } = {},
): (reason: string) => Promise<void> {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let running: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    if (running) return running;
    running = (async () => {
      log.info({ reason }, 'shutting down');
      const timer = setTimeout(() => {
        log.error({ deadlineMs: opts.deadlineMs ?? 25_000 }, 'shutdown deadline exceeded: forcing exit');
        exit(1);
      }, opts.deadlineMs ?? 25_000);
      timer.unref();
      let code = 0;
      for (const [name, fn] of steps) {
        try {
          await fn();
          log.debug({ step: name }, 'shutdown step done');
        } catch (err) {
          code = 1;
          log.error({ err, step: name }, 'shutdown step failed');
        }
      }
      log.info({ code }, 'stopped');
      log.flush?.();
      clearTimeout(timer);
      exit(code);
    })();
    return running;
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  return shutdown;
}
