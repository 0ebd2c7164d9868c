/**
 * P2C over identical real instances: three tiny node:http servers on
 * 127.0.0.1 behind a real outbound proxy. Each instance counts its own hits,
 * so the shares are read from the instances, not from the proxy.
 * The pure, simulated version of these cases is test/proxy/balance/p2c-fairness.test.ts.
 *
 * Before the fix the sequential case went 504/352/144, 269/134/597,
 * 381/534/85 and 298/140/562 in four runs: the instance that got its first
 * request last stayed at the 30 ms guess beside peers measured at ~1 ms.
 */
import t from 'tap';
import { seededRandom } from '../../../base/clock.js';
import type { RouteInstance } from '../../../proxy/ports.js';
import { certsTls, clientAgent, FakeRouteSource, type Host, load, makeCa, request, startOutbound, startPlainInstance } from './helpers.js';

const tls = certsTls(makeCa(), ['frontend']);

/** An identical instance: answers 200 with its name at once, and notes when its first request came (for the log only). */
async function instance(t: Host, id: string): Promise<{ route: RouteInstance; hits: () => number; firstHitAt: () => number | undefined }> {
  let firstHitAt: number | undefined;
  const server = await startPlainInstance(t, '127.0.0.1', (_req, res) => {
    firstHitAt ??= performance.now();
    res.setHeader('x-served-by', id);
    res.end(id);
  });
  const route: RouteInstance = { id, address: '127.0.0.1', port: server.port, meshPort: undefined, version: undefined, weight: 1, healthy: true };
  return { route, hits: () => server.hits, firstHitAt: () => firstHitAt };
}

const percent = (n: number, of: number): string => `${((100 * n) / of).toFixed(1)}%`;

t.test('1,000 sequential requests over three identical instances: each gets 25% to 42%', async (t) => {
  const source = new FakeRouteSource();
  const instances = await Promise.all(['a', 'b', 'c'].map((id) => instance(t, id)));
  source.setInstances('backend', instances.map((i) => i.route));
  const proxy = await startOutbound(t, { source, tls }, { algorithm: 'p2c', random: seededRandom(1) });
  const agent = clientAgent(t, 1);
  const replies = await load(1_000, 1, () => request(agent, proxy.portOf('frontend')));
  t.equal(replies.filter((r) => r.status === 200).length, 1_000, 'every request answered 200');
  const hits = instances.map((i) => i.hits());
  t.comment(`hits a/b/c: ${hits.join('/')}`);
  for (const [k, n] of hits.entries()) {
    t.ok(n >= 250 && n <= 420, `${instances[k]!.route.id}: ${n} of 1,000 (${percent(n, 1_000)})`);
  }
});

t.test('a fourth instance added under load takes its share of the requests that start after it', async (t) => {
  const source = new FakeRouteSource();
  const first = await Promise.all(['a', 'b', 'c'].map((id) => instance(t, id)));
  const added = await instance(t, 'd');
  source.setInstances('backend', first.map((i) => i.route));
  const proxy = await startOutbound(t, { source, tls }, { algorithm: 'p2c', random: seededRandom(2) });
  const port = proxy.portOf('frontend');
  const concurrency = 4;
  const agent = clientAgent(t, concurrency);
  const warmUp = 300;
  const limit = 50_000;
  let started = 0;
  let startedBeforeAdd = -1;
  let addedAt = 0;
  let stop = false;
  let failures = 0;
  // Four closed-loop clients. After `warmUp` requests (the three instances
  // have estimates and pooled connections) d is added, and the load runs on
  // for 1 s; bounded by `limit` requests in any case.
  const worker = async (): Promise<void> => {
    while (!stop && started < limit) {
      if (started === warmUp && startedBeforeAdd < 0) {
        startedBeforeAdd = started;
        addedAt = performance.now();
        source.setInstances('backend', [...first, added].map((i) => i.route));
        setTimeout(() => {
          stop = true;
        }, 1_000);
      }
      started++;
      const reply = await request(agent, port);
      if (reply.status !== 200) failures++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  t.equal(failures, 0, 'every request answered 200');
  t.ok(startedBeforeAdd === warmUp, 'd was added under load');
  const after = started - startedBeforeAdd;
  const d = added.hits();
  const firstHit = added.firstHitAt();
  t.comment(
    `after d was added: ${after} requests, d got ${d} (${percent(d, after)}), its first ${firstHit === undefined ? 'never' : `${(firstHit - addedAt).toFixed(1)} ms after`}; a/b/c in all: ${first.map((i) => i.hits()).join('/')}`,
  );
  t.ok(after >= 40, `enough load to judge (${after} requests in the second after d was added)`);
  t.ok(d >= 0.15 * after, `d took ${d} of the ${after} requests after it was added (${percent(d, after)})`);
});
