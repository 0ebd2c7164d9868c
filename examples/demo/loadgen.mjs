// The demo's load generator: calls `frontend` through the mesh (its host
// proxy's outbound port for `loadgen`) at a rate that follows PROFILE, a ramp
// up and down, then stops sending by itself and only answers /status. The
// profile starts at the first answer from the frontend (the mesh is warm by
// then), or after START_WITHIN even if none came. Bounded: the profile is a
// few minutes long and at most MAX_IN_FLIGHT requests are outstanding (more
// are counted as `skipped`, not queued).
//
// Environment:
//   HOST (else WEFT_HOST_ADDRESS), PORT     where /health and /status listen (the agent sets both)
//   SERVICE (loadgen), TARGET (frontend)    who calls whom
//   PROFILE (40s@2-40,40s@40,30s@40-2,20s@2)  stages `<duration>@<rps>` or `<duration>@<from>-<to>` (linear)
//   START_WITHIN (120s)   start the profile after this long even with no answer yet
//   MAX_IN_FLIGHT (64), OUTBOUND_HOST (127.0.0.1), WEFT_VOLUME_WEFT_PROXY (see mesh-port.mjs)
//
// GET /status answers JSON: phase (waiting|running|done), the stage and its
// trend (up|down|steady), the target rate now, the elapsed and total time of the profile, and counts
// (sent, ok, failed, skipped) with the last failure's reason.
import { createServer, request, Agent } from 'node:http';
import { outboundPort } from './mesh-port.mjs';

const env = process.env;
const host = env.HOST || env.WEFT_HOST_ADDRESS || '127.0.0.1';
const port = Number(env.PORT || 8081);
const service = env.SERVICE || 'loadgen';
const target = env.TARGET || 'frontend';
const outboundHost = env.OUTBOUND_HOST || '127.0.0.1';
const maxInFlight = Number(env.MAX_IN_FLIGHT || 64);
const TICK_MS = 50;

/** `90s`, `2m`, `1m30s`, `500ms` -> ms. */
function duration(text) {
  let ms = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m;
  let seen = '';
  while ((m = re.exec(text)) !== null) {
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]];
    seen += m[0];
  }
  if (seen !== text || ms <= 0) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return ms;
}

/** `40s@2-40,40s@40` -> [{ ms, from, to }]. */
function parseProfile(text) {
  const stages = text.split(',').map((part) => {
    const m = /^\s*([0-9a-z.]+)@(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?\s*$/.exec(part);
    if (m === null) throw new Error(`PROFILE: bad stage ${JSON.stringify(part)}: write <duration>@<rps> or <duration>@<from>-<to>, e.g. 40s@2-40`);
    const from = Number(m[2]);
    return { ms: duration(m[1]), from, to: m[3] === undefined ? from : Number(m[3]) };
  });
  if (stages.length === 0 || stages.length > 64) throw new Error('PROFILE: 1 to 64 stages');
  if (stages.some((s) => s.from > 2000 || s.to > 2000)) throw new Error('PROFILE: at most 2000 requests/s');
  return stages;
}

const stages = parseProfile(env.PROFILE || '40s@2-40,40s@40,30s@40-2,20s@2');
const totalMs = stages.reduce((n, s) => n + s.ms, 0);
const startWithinMs = duration(env.START_WITHIN || '120s');
const meshPort = outboundPort(service);
const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight });
const bootAt = Date.now();

const counts = { sent: 0, ok: 0, failed: 0, skipped: 0 };
let lastFailure = null;
let startedAt;
let inFlight = 0;
let due = 0;
let lastTick = Date.now();

/** The stage and target rate `elapsed` ms into the profile (undefined once it is over). */
function rateAt(elapsed) {
  let at = 0;
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i];
    if (elapsed < at + s.ms) return { stage: i, rps: s.from + ((s.to - s.from) * (elapsed - at)) / s.ms };
    at += s.ms;
  }
  return undefined;
}

function fire() {
  const p = meshPort();
  if (p === undefined) {
    counts.failed++;
    lastFailure = `no outbound port for ${service} yet`;
    return;
  }
  counts.sent++;
  inFlight++;
  const req = request({ host: outboundHost, port: p, path: '/', agent, headers: { host: target }, timeout: 10_000 }, (res) => {
    res.resume();
    res.on('end', () => {
      inFlight--;
      if (res.statusCode === 200) {
        counts.ok++;
        startedAt ??= Date.now();
      } else {
        counts.failed++;
        lastFailure = `${res.statusCode} ${res.headers['x-weft-reason'] ?? ''}`.trim();
      }
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (err) => {
    inFlight--;
    counts.failed++;
    lastFailure = err.message;
  });
  req.end();
}

function tick() {
  const now = Date.now();
  const dt = now - lastTick;
  lastTick = now;
  if (startedAt === undefined) {
    // Warming up: one request a second until the frontend answers (or START_WITHIN passes).
    if (now - bootAt >= startWithinMs) startedAt = now;
    else if (inFlight === 0 && Math.floor(now / 1000) !== Math.floor((now - dt) / 1000)) fire();
    return;
  }
  const r = rateAt(now - startedAt);
  if (r === undefined) {
    clearInterval(timer);
    agent.destroy();
    process.stdout.write(`profile done: ${JSON.stringify(counts)}\n`);
    return;
  }
  due += (r.rps * dt) / 1000;
  while (due >= 1) {
    due -= 1;
    if (inFlight >= maxInFlight) counts.skipped++;
    else fire();
  }
}
const timer = setInterval(tick, TICK_MS);

function status() {
  const now = Date.now();
  const elapsedMs = startedAt === undefined ? 0 : Math.min(totalMs, now - startedAt);
  const r = startedAt === undefined ? undefined : rateAt(now - startedAt);
  const phase = startedAt === undefined ? 'waiting' : r === undefined ? 'done' : 'running';
  const s = r === undefined ? undefined : stages[r.stage];
  const trend = s === undefined ? null : s.to > s.from ? 'up' : s.to < s.from ? 'down' : 'steady';
  return { service, target, phase, stage: r?.stage ?? null, stages: stages.length, trend, rps: r === undefined ? 0 : Math.round(r.rps * 10) / 10, elapsedMs, totalMs, ...counts, inFlight, lastFailure };
}

const server = createServer((req, res) => {
  const url = new URL(req.url || '/', 'http://x');
  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  res.writeHead(url.pathname === '/status' ? 200 : 404, { 'content-type': 'application/json' }).end(`${JSON.stringify(status())}\n`);
});
function stop() {
  clearInterval(timer);
  agent.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.listen(port, host, () => process.stdout.write(`loadgen on ${host}:${port}: ${stages.length} stages over ${totalMs / 1000}s against ${target}\n`));
