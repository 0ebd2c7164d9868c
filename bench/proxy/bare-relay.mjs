// The floor for HTTP-level proxying in Node: the two hops of
// bench/proxy/two-hops.ts with no weft code at all, only a Node HTTP server
// relaying to a keep-alive client (no routing, picking, retries, metrics,
// header hygiene, intentions). Plain JavaScript so nothing compiles at runtime.
//
//   node bench/proxy/bare-relay.mjs outbound <bind> <port> <upstreamHost> <upstreamPort> <identityDir> <sni> [node|undici]
//   node bench/proxy/bare-relay.mjs inbound  <bind> <port> <appHost> <appPort> <identityDir> [node|undici]
//
// outbound: HTTP server -> mTLS client (identityDir's key.pem/cert.pem, bundle.pem as CA, SNI)
// inbound:  mTLS server (client certificate required) -> HTTP client to the app
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';

const [mode, bind, port, upHost, upPort, idDir, ...rest] = process.argv.slice(2);
const sni = mode === 'outbound' ? rest[0] : undefined;
const client = (mode === 'outbound' ? rest[1] : rest[0]) ?? 'node';
const tls = { key: readFileSync(join(idDir, 'key.pem')), cert: readFileSync(join(idDir, 'cert.pem')), ca: readFileSync(join(idDir, 'bundle.pem')) };
const secure = mode === 'outbound';
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function endToEnd(headers) {
  const out = {};
  for (const name in headers) if (!HOP.has(name)) out[name] = headers[name];
  return out;
}

let handler;
if (client === 'undici') {
  const { Pool } = await import('undici');
  const origin = `${secure ? 'https' : 'http'}://${upHost}:${upPort}`;
  const pool = new Pool(origin, { connections: 128, pipelining: 1, connect: secure ? { ...tls, servername: sni, rejectUnauthorized: true } : undefined });
  handler = (req, res) => {
    pool.request({ method: req.method, path: req.url, headers: endToEnd(req.headers), body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, (err, data) => {
      if (err) {
        res.writeHead(502).end();
        return;
      }
      res.writeHead(data.statusCode, endToEnd(data.headers));
      data.body.pipe(res);
    });
  };
} else {
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 128, scheduling: 'lifo', ...tls, servername: sni })
    : new http.Agent({ keepAlive: true, maxSockets: 128, scheduling: 'lifo' });
  const request = secure ? https.request : http.request;
  handler = (req, res) => {
    const up = request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: endToEnd(req.headers), agent });
    up.on('response', (ures) => {
      res.writeHead(ures.statusCode, endToEnd(ures.headers));
      ures.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  };
}

const server = secure ? http.createServer({ keepAliveTimeout: 60_000 }, handler) : https.createServer({ ...tls, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000 }, handler);
server.listen(Number(port), bind, () => process.stderr.write(`bare-relay ${mode} (${client}) on ${bind}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
