/** What the two autoscale source tests share: a local app behind the proxies, and readers of a source's readings. */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import type { MetricReading } from '../../../scheduler/index.js';
import { HOST } from '../../proxy/inbound/fixtures.js';

/** A local app: `?ms=N` answers after N ms, `?status=N` with that status, `/hold` waits for release(). */
export async function startApp(t: Test): Promise<{ port: number; held: () => number; release: () => void }> {
  const holding: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://app');
    if (url.pathname === '/hold') {
      holding.push(res);
      return;
    }
    const status = Number(url.searchParams.get('status') ?? 200);
    setTimeout(() => res.writeHead(status, { 'content-type': 'text/plain' }).end('ok'), Number(url.searchParams.get('ms') ?? 0));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    held: () => holding.length,
    release: () => {
      for (const res of holding.splice(0)) res.writeHead(200).end('released');
    },
  };
}

/** The per-instance values of a reading; throws for any other kind. */
export function values(r: MetricReading | undefined): Readonly<Record<string, number>> {
  if (r?.kind !== 'instances') throw new Error(`expected per-instance values, got ${JSON.stringify(r)}`);
  return r.values;
}

/** The service-level value of a reading; throws for any other kind. */
export function serviceValue(r: MetricReading | undefined): number | null {
  if (r?.kind !== 'service') throw new Error(`expected a service value, got ${JSON.stringify(r)}`);
  return r.value;
}
