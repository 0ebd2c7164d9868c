/**
 * Root rotation under continuous HTTPS traffic on loopback, as Linkerd proves
 * it: every request must succeed (100.00%). Half the workers reuse keep-alive
 * connections (which must survive the server's setSecureContext swaps), half
 * open a new connection per request (a full handshake with whatever identity
 * and bundle are current at that instant). Bounded by request count and time.
 */
import https from 'node:https';
import type { Socket } from 'node:net';
import t from 'tap';
import { bundlePem } from '../../certs/bundle.js';
import { createCsrSigner } from '../../certs/csr-signer.js';
import { obtainIdentity } from '../../certs/identity.js';
import { type MeshIdentity, meshClientOptions, meshServerOptions, peerIdentity, requirePeerIdentity, swapServerIdentity } from '../../certs/mtls.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { TD, makeCa } from './fixtures.js';

const HOUR = 3600_000;
const PHASE_REQUESTS = 150;
const MAX_REQUESTS = 3000;
const DEADLINE_MS = 30_000;
const WORKERS = 6;

t.test('rotation under continuous HTTPS traffic: 100.00% of requests succeed', async (t) => {
  const clock = { offset: 0 };
  const ca = makeCa({ intermediate: true, leafTtlMs: HOUR, clock: () => Date.now() + clock.offset });
  const signer = createCsrSigner({ ca });
  const issue = (service: string): Promise<MeshIdentity> =>
    obtainIdentity(spiffeId(TD, 'default', service), (csr) => signer.sign(csr, { allowedServices: [service] }), bundlePem(ca.bundle()));

  // Server: web, guarded, records which socket served each request and in which phase.
  let phase = 1;
  let serverIdentity = await issue('web');
  const socketsByPhase = new Map<number, Set<Socket>>();
  const server = https.createServer(meshServerOptions(serverIdentity), (req, res) => {
    if (!socketsByPhase.has(phase)) socketsByPhase.set(phase, new Set());
    socketsByPhase.get(phase)!.add(req.socket);
    res.end(`ok ${peerIdentity(req.socket as import('node:tls').TLSSocket)?.uri}`);
  });
  requirePeerIdentity(server, { trustDomain: TD });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  // Client: api. A keep-alive agent per identity; a retired agent is destroyed once idle.
  let clientIdentity = await issue('api');
  const newAgent = (id: MeshIdentity) => new https.Agent({ ...meshClientOptions(id, { trustDomain: TD }), keepAlive: true, maxSockets: WORKERS });
  let agent = newAgent(clientIdentity);
  const inFlight = new Map<https.Agent, number>();
  const retired = new Set<https.Agent>();
  const allAgents = [agent];
  const swapClient = (id: MeshIdentity) => {
    clientIdentity = id;
    retired.add(agent);
    if ((inFlight.get(agent) ?? 0) === 0) agent.destroy();
    agent = newAgent(id);
    allAgents.push(agent);
  };

  const results = { ok: 0, failed: [] as string[], byPhase: new Map<number, number>() };
  const want = `ok spiffe://${TD}/ns/default/svc/api`;
  const request = (fresh: boolean): Promise<void> => {
    const via = agent;
    const options = fresh ? { ...meshClientOptions(clientIdentity, { trustDomain: TD }), agent: false as const } : { agent: via };
    inFlight.set(via, (inFlight.get(via) ?? 0) + 1);
    const started = phase;
    return new Promise<void>((resolve) => {
      const done = (err?: string) => {
        inFlight.set(via, inFlight.get(via)! - 1);
        if (retired.has(via) && inFlight.get(via) === 0) via.destroy();
        if (err === undefined) results.ok++;
        else results.failed.push(`phase ${started} ${fresh ? 'fresh' : 'keep-alive'}: ${err}`);
        results.byPhase.set(started, (results.byPhase.get(started) ?? 0) + 1);
        resolve();
      };
      const req = https.request({ host: '127.0.0.1', port, path: '/', ...options }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => done(res.statusCode === 200 && body === want ? undefined : `status ${res.statusCode} body ${body}`));
        res.on('error', (e) => done(e.message));
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('error', (e) => done(e.message));
      req.end();
    });
  };

  const started = Date.now();
  let total = 0;
  let stop = false;
  const worker = async (fresh: boolean) => {
    while (!stop && total < MAX_REQUESTS && Date.now() - started < DEADLINE_MS) {
      total++;
      await request(fresh);
    }
  };
  const untilPhaseDone = async () => {
    const target = total + PHASE_REQUESTS;
    while (total < target && total < MAX_REQUESTS && Date.now() - started < DEADLINE_MS) await new Promise((r) => setTimeout(r, 5));
  };
  const workers = [...Array(WORKERS).keys()].map((i) => worker(i % 2 === 1));

  await untilPhaseDone(); // phase 1: everyone on root 1
  const [oldRootId] = ca.bundle().roots.map((r) => r.id);
  ca.rotate();
  // Phase 2: the server takes the two-root bundle and a leaf from the new root; the client is not told yet.
  phase = 2;
  serverIdentity = { ...(await issue('web')), bundlePem: bundlePem(ca.bundle()) };
  swapServerIdentity(server, serverIdentity);
  await untilPhaseDone();
  // Phase 3: the client renews under the new root and fetches the new bundle.
  phase = 3;
  swapClient(await issue('api'));
  await untilPhaseDone();
  // Phase 4: 2 x leaf TTL later the old root leaves the bundle, on both sides.
  phase = 4;
  clock.offset += 2 * HOUR;
  t.strictSame(ca.prune(), [oldRootId], 'old root pruned');
  const finalBundle = bundlePem(ca.bundle());
  swapServerIdentity(server, { ...serverIdentity, bundlePem: finalBundle });
  swapClient({ ...clientIdentity, bundlePem: finalBundle });
  await untilPhaseDone();
  stop = true;
  await Promise.all(workers);
  for (const a of allAgents) a.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));

  const pct = ((100 * results.ok) / total).toFixed(2);
  t.comment(`requests: ${total}, ok: ${results.ok}, by phase: ${JSON.stringify([...results.byPhase])}, in ${Date.now() - started} ms`);
  t.strictSame(results.failed, [], 'no request failed');
  t.equal(pct, '100.00', '100.00% success');
  for (const p of [1, 2, 3, 4]) t.ok((results.byPhase.get(p) ?? 0) > 0, `phase ${p} carried traffic`);
  const kept = [...(socketsByPhase.get(1) ?? [])].filter((s) => socketsByPhase.get(2)?.has(s));
  t.ok(kept.length > 0, `keep-alive connections opened before the server's swap kept serving after it (${kept.length})`);
});
