/**
 * A local app for the hostile-request tests (Node's http server on the
 * inbound fixtures' HOST) that records each request head the moment it
 * arrives, before any body: a request the proxy forwarded and then cut is
 * recorded too, as are upgrades, CONNECTs and heads the app could not parse.
 * It answers JSON `{ url, body }`, after `?delay=ms` when the URL asks.
 * (Not a *.test.ts file, so tap does not run it.)
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Test } from 'tap';
import { HOST } from './fixtures.js';

/** A local app that records each request head as it arrives (`METHOD url`), upgrades, CONNECTs and parse errors included. */
export async function startRecordingApp(t: Test): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    heads.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delay = Number(new URL(req.url ?? '/', 'http://app').searchParams.get('delay') ?? 0);
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, body: Buffer.concat(chunks).toString() }));
      }, delay);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    heads.push(`upgrade ${req.method} ${req.url}`);
    socket.destroy();
  });
  server.on('connect', (req: http.IncomingMessage, socket: Socket) => {
    heads.push(`connect ${req.method} ${req.url}`);
    socket.destroy();
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    heads.push(`clientError ${err.code ?? err.message}`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, heads };
}
