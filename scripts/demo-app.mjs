// weft's demo HTTP app, for tests, benchmarks and demos. Runs in the test image
// (scripts/build-test-image.sh) and under the process driver alike.
//
// Environment:
//   HOST (else WEFT_HOST_ADDRESS, else 127.0.0.1), PORT (8080)   where to listen
//   LATENCY_MS (0)                      added to every non-health response
//   ERROR_RATE (0)                      share of responses that are 500s, 0..1
//   HEALTHY (1)                         0 makes /health answer 503
//   SERVICE, WEFT_INSTANCE              echoed in responses
//   WEFT_SECRET_<NAME>                  a file secret's path (set by weft agent): responses carry the
//                                       sha256 of each such file, read per request (never the content)
//   DRAIN_MS (10000)                    on SIGTERM: stop accepting, let in-flight requests finish for up to this long
//
// Paths: /health; /exit?code=N exits at once with N (restart-policy tests);
// anything else answers JSON, `?delay=ms` overrides LATENCY_MS for that request.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const env = process.env;
const host = env.HOST || env.WEFT_HOST_ADDRESS || '127.0.0.1';
const port = Number(env.PORT || 8080);
const latencyMs = Number(env.LATENCY_MS || 0);
const errorRate = Number(env.ERROR_RATE || 0);
const drainMs = Number(env.DRAIN_MS || 10000);
let healthy = env.HEALTHY !== '0';
const secretFiles = Object.entries(env).filter(([k]) => k.startsWith('WEFT_SECRET_'));

/** sha256 of each file secret (null when unreadable), by env name; undefined when there are none. */
function secretHashes() {
  if (secretFiles.length === 0) return undefined;
  const out = {};
  for (const [name, path] of secretFiles) {
    try {
      out[name] = createHash('sha256').update(readFileSync(path)).digest('hex');
    } catch {
      out[name] = null;
    }
  }
  return out;
}
let inFlight = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url || '/', 'http://x');
  if (url.pathname === '/health') {
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' }).end(healthy ? 'ok\n' : 'unhealthy\n');
    return;
  }
  if (url.pathname === '/exit') {
    res.end('bye\n');
    process.exit(Number(url.searchParams.get('code') || 0));
  }
  if (url.pathname === '/unhealthy') {
    healthy = false;
    res.end('now unhealthy\n');
    return;
  }
  inFlight++;
  const delay = url.searchParams.has('delay') ? Number(url.searchParams.get('delay')) : latencyMs;
  setTimeout(() => {
    inFlight--;
    const fail = Math.random() < errorRate;
    const body = JSON.stringify({ service: env.SERVICE || null, instance: env.WEFT_INSTANCE || null, host, port, path: url.pathname, ok: !fail, secretFiles: secretHashes() });
    res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json' }).end(`${body}\n`);
    if (stopping && inFlight === 0) server.close(() => process.exit(0));
  }, delay);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  // Close idle keep-alive sockets; requests in flight finish first.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), drainMs).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.keepAliveTimeout = 2000;
server.listen(port, host, () => process.stdout.write(`demo-app listening on ${host}:${port}\n`));
