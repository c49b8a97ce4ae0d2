import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { metricPrefix } from './kafka/metrics.js';
import type { Logger } from './logger.js';

/** One readiness dependency: resolves when healthy, throws (with the reason) when not. */
export type ReadinessCheck = () => Promise<void>;

export interface HealthServerOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  registry: Registry;
  /** Named checks for /readyz (e.g. kafka, redis). Each runs with `checkTimeoutMs`. */
  readiness?: Record<string, ReadinessCheck>;
  /** Liveness: false when the process should be restarted (e.g. its consumer loop failed). @default always live */
  live?: () => boolean | { ok: boolean; reason?: string };
  /** @default 2000 */
  checkTimeoutMs?: number;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * One registry per service, with prom-client's process metrics under the service's prefix
 * (livelens_<service>_process_cpu_seconds_total, ..._nodejs_eventloop_lag_seconds, ...).
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: metricPrefix(service) });
  return registry;
}

/**
 * `/metrics` (Prometheus text), `/healthz` (liveness) and `/readyz` (every readiness check passes: broker and
 * Redis reachable). Readiness answers 503 with the failing checks and their reasons as JSON.
 */
export async function startHealthServer(options: HealthServerOptions, logger: Logger): Promise<HealthServer> {
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  const runCheck = async (name: string, check: ReadinessCheck) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        check(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { name, ok: true as const };
    } catch (error) {
      return { name, ok: false as const, reason: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return reply(405, 'text/plain', 'method not allowed\n');
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, options.registry.contentType, text),
        (error: Error) => reply(500, 'text/plain', `${error.message}\n`),
      );
      return;
    }
    if (path === '/healthz') {
      const raw = options.live?.() ?? true;
      const live = typeof raw === 'boolean' ? { ok: raw } : raw;
      return reply(
        live.ok ? 200 : 503,
        'application/json',
        `${JSON.stringify({ status: live.ok ? 'ok' : 'failed', ...live })}\n`,
      );
    }
    if (path === '/readyz') {
      const checks = Object.entries(options.readiness ?? {});
      Promise.all(checks.map(([name, check]) => runCheck(name, check))).then((results) => {
        const ok = results.every((r) => r.ok);
        reply(
          ok ? 200 : 503,
          'application/json',
          `${JSON.stringify({ status: ok ? 'ready' : 'not_ready', checks: results })}\n`,
        );
      });
      return;
    }
    reply(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port }, 'health server listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
