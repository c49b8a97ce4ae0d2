import type { Logger } from './logger.js';

/**
 * Handles SIGTERM and SIGINT in one place: the first signal runs `shutdown` (drain consumers, close servers),
 * bounded by `timeoutMs`; a second signal or the timeout exits at once. Exit code 0 after a clean drain,
 * 1 when shutdown failed or timed out. Only a service's main.ts calls this.
 */
export function handleShutdownSignals(
  shutdown: (signal: string) => Promise<void>,
  options: { logger: Logger; timeoutMs: number; exit?: (code: number) => void },
): void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      options.logger.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    stopping = true;
    options.logger.info({ signal, timeoutMs: options.timeoutMs }, 'shutting down');
    const timer = setTimeout(() => {
      options.logger.error({ timeoutMs: options.timeoutMs }, 'shutdown timed out: exiting');
      exit(1);
    }, options.timeoutMs);
    timer.unref();
    shutdown(signal).then(
      () => {
        clearTimeout(timer);
        options.logger.info({}, 'shut down cleanly');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        options.logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
