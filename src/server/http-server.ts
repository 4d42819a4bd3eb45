/**
 * The small HTTP server of a node (node:http, no framework): Prometheus metrics and health checks
 * for orchestrators and scrapers.
 *
 *   GET /metrics  Prometheus text (metrics.ts)
 *   GET /livez    200 while the node actor runs; 503 once it has failed (restart the process)
 *   GET /readyz   200 once the node serves; 503 while it starts or stops
 *   GET /dashboard  the cluster dashboard and its JSON (dashboard/routes.ts), when the node mounts it
 *   GET /         a short index of the above
 *
 * More routes can be mounted with `routes`. The server never throws into the node:
 * a failing handler answers 500 and is logged.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Log } from '../ports/log.js';
import type { NodeMetrics } from './metrics.js';

export const httpHostDefault = '0.0.0.0';
/** Requests slower than this are cut off (a scraper that stalls must not hold a socket forever). */
export const httpRequestTimeoutMs = 10_000;
/** Sockets the server keeps open at once. */
export const httpConnectionsMax = 256;

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  port: number;
  host?: string;
  metrics: NodeMetrics;
  log: Log;
  /** More GET routes, by exact path. */
  routes?: Record<string, RouteHandler>;
}

export interface HttpServer {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { metrics, log } = opts;
  const routes: Record<string, RouteHandler> = {
    '/metrics': async (_req, res) => send(res, 200, await metrics.text(), metrics.contentType),
    '/livez': (_req, res) => {
      const h = metrics.health();
      send(res, h.live ? 200 : 503, h.live ? 'ok\n' : `not live: ${h.reason}\n`);
    },
    '/readyz': (_req, res) => {
      const h = metrics.health();
      send(res, h.ready ? 200 : 503, h.ready ? 'ok\n' : `not ready: ${h.reason}\n`);
    },
    ...opts.routes,
  };
  const index = () =>
    `ringkv node\n\n${Object.keys(routes)
      .sort()
      .map((p) => `  ${p}`)
      .join('\n')}\n`;

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET and HEAD\n');
    const handler = path === '/' ? (_: IncomingMessage, r: ServerResponse) => send(r, 200, index()) : routes[path];
    if (!handler) return send(res, 404, `no such path: ${path}\n`);
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        log.error('http handler failed', { path, err });
        if (!res.headersSent) send(res, 500, 'internal error\n');
        else res.destroy();
      });
  });
  server.requestTimeout = httpRequestTimeoutMs;
  server.maxConnections = httpConnectionsMax;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? httpHostDefault, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error('http server error', { err }));
  const port = (server.address() as AddressInfo).port;
  log.info('http serving', { port, host: opts.host ?? httpHostDefault });

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
