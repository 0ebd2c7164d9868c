/**
 * One GET through a proxy's outbound port, naming the destination service in
 * Host as a local app does; a fresh connection each time (no keep-alive pool
 * to hide a refused connection).
 */
import http from 'node:http';

/** The answer: status, body as text, and weft's reason header when it refused. */
export interface MeshReply {
  status: number;
  body: string;
  reason: string;
}

/** GET `path` (default `/`) for `service` through the listener at `address`:`port`. */
export function meshGet(address: string, port: number, service: string, opts: { path?: string; timeoutMs?: number } = {}): Promise<MeshReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: address, port, path: opts.path ?? '/', headers: { host: service }, agent: false, timeout: opts.timeoutMs ?? 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reason: String(res.headers['x-weft-reason'] ?? '') }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
