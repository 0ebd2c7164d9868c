// The demo's `frontend`: answers every request by calling `backend` through
// the mesh (its host proxy's outbound port for `frontend`, Host: backend), and
// says which backend instance and version answered. Runs under the process
// driver (node examples/demo/frontend.mjs) and in weft's demo image alike.
//
// Environment:
//   HOST (else WEFT_HOST_ADDRESS, else 127.0.0.1), PORT   where to listen (the agent sets both)
//   SERVICE (frontend)            this service's name, to find its outbound port
//   UPSTREAM (backend)            the service it calls
//   OUTBOUND_HOST (127.0.0.1)     where the host proxy's outbound ports listen
//   WEFT_VOLUME_WEFT_PROXY        the host's proxy directory (local.json), mounted by the job
//   DRAIN_MS (2000)               on SIGTERM: let in-flight requests finish for up to this long
//
// Paths: /health (always 200: the outbound port is assigned only once the
// instance is registered, so health cannot wait for it); anything else calls
// UPSTREAM with the same path and answers 200 with both answers, or 502 when
// the backend call failed (the proxy's x-weft-reason in the body).
import { createServer, request, Agent } from 'node:http';
import { outboundPort } from './mesh-port.mjs';

const env = process.env;
const host = env.HOST || env.WEFT_HOST_ADDRESS || '127.0.0.1';
const port = Number(env.PORT || 8080);
const service = env.SERVICE || 'frontend';
const upstream = env.UPSTREAM || 'backend';
const outboundHost = env.OUTBOUND_HOST || '127.0.0.1';
const drainMs = Number(env.DRAIN_MS || 2000);
const meshPort = outboundPort(service);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** One call to the upstream through the mesh: { status, body, reason }. */
function callUpstream(path) {
  return new Promise((resolve) => {
    const p = meshPort();
    if (p === undefined) {
      resolve({ status: 503, body: null, reason: `no outbound port for ${service} yet` });
      return;
    }
    const req = request({ host: outboundHost, port: p, path, agent, headers: { host: upstream }, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let body = null;
        try {
          body = JSON.parse(text);
        } catch {
          body = text.slice(0, 200);
        }
        resolve({ status: res.statusCode ?? 0, body, reason: res.headers['x-weft-reason'] });
      });
      res.on('error', (err) => resolve({ status: 0, body: null, reason: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: null, reason: err.message }));
    req.end();
  });
}

let inFlight = 0;
let stopping = false;
const server = createServer(async (req, res) => {
  const url = new URL(req.url || '/', 'http://x');
  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  inFlight++;
  const answer = await callUpstream(url.pathname + url.search);
  inFlight--;
  const ok = answer.status >= 200 && answer.status < 300;
  const body = { service, instance: env.WEFT_INSTANCE || env.WEFT_ALLOC || null, host, upstream: { service: upstream, status: answer.status, answer: answer.body, reason: answer.reason ?? null } };
  res.writeHead(ok ? 200 : 502, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  if (stopping && inFlight === 0) server.close(() => process.exit(0));
});

function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), drainMs).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.keepAliveTimeout = 2000;
server.listen(port, host, () => process.stdout.write(`frontend listening on ${host}:${port}, calling ${upstream} through the mesh\n`));
