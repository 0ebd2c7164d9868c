import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DiscoveryClient } from '../../../discovery/client.js';
import { routeCachePath } from '../../../proxy/outbound/route-cache.js';
import { eventually } from '../../helpers/eventually.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { consulRouteSource } from '../../../src/wiring/proxy-routes.js';
import { ProxySignedState, proxyKeysPath } from '../../../src/wiring/proxy-signed-state.js';
import { silentLogger } from '../../../base/log.js';
import { testSigner } from '../../helpers/signing.js';
import { clientAgent, certsTls, countBy, load, makeCa, request, startMeshHost, startOutbound } from './helpers.js';

const ca = makeCa();
const tls = certsTls(ca, ['frontend']);

t.test('routes from Consul watches; last-known-good through an outage and across a proxy restart', async (t) => {
  const consul = await startTestConsul(t);
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-outbound-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const h3 = await startMeshHost(t, ca, 'backend', '127.0.0.3');
  h2.instance('h2-a');
  h3.instance('h3-b');
  const register = (host: typeof h2, id: string, version: string) =>
    consul.consul.agent.service.register({
      id,
      name: 'backend',
      address: host.address,
      port: 8080,
      tags: ['weft'],
      meta: { weft_mesh_port: String(host.port), weft_version: version, weft_weight: '1' },
    });
  await register(h2, 'h2-a', 'v1');
  await register(h3, 'h3-b', 'v2');
  // Splits as the scheduler writes them: signed for their key, verified with the keys the agent hands the proxy.
  const signer = await testSigner(t);
  await signer.handToProxy(dataDir);
  const signed = (): ProxySignedState => {
    const s = new ProxySignedState(proxyKeysPath(dataDir), { logger: silentLogger });
    s.reload();
    return s;
  };
  await signer.put(consul.consul, 'weft/splits/backend', { v1: 1, v2: 1 });

  const watchOpts = { waitMs: 2000, backoffBaseMs: 50, backoffMaxMs: 200 };
  const client = new DiscoveryClient({ address: consul.address }, { requestTimeoutMs: 500 });
  t.teardown(() => client.consul.destroy());
  const opts = { dataDir, algorithm: 'swrr' as const };
  const first = await startOutbound(t, { source: consulRouteSource(client, watchOpts, signed()), tls }, opts);
  const agent = clientAgent(t);
  const served = async (proxyPort: number) => countBy(await load(20, 2, () => request(agent, proxyPort)), (r) => `${r.status} ${r.headers['x-served-by']}`);
  t.strictSame(await served(first.portOf('frontend')), { '200 h2-a': 10, '200 h3-b': 10 }, 'both instances, from the watch');

  // A change is pushed by the blocking query: the split moves all traffic to v2.
  await signer.put(consul.consul, 'weft/splits/backend', { v1: 0, v2: 1 });
  await eventually(async () => (await request(agent, first.portOf('frontend'))).headers['x-served-by'] === 'h3-b' && (await served(first.portOf('frontend')))['200 h3-b'] === 20, 5000, 'split change');
  await signer.put(consul.consul, 'weft/splits/backend', { v1: 1, v2: 1 });
  await eventually(async () => (await served(first.portOf('frontend')))['200 h2-a'] === 10, 5000, 'split back to 1:1');

  await consul.close();
  await new Promise((r) => setTimeout(r, 300)); // watches fail and back off meanwhile
  t.strictSame(await served(first.portOf('frontend')), { '200 h2-a': 10, '200 h3-b': 10 }, 'unchanged while Consul is down');

  await first.close(1000);
  const cache = JSON.parse(await readFile(routeCachePath(dataDir), 'utf8')) as { services: Record<string, { instances: unknown[]; split: string }> };
  t.equal(cache.services['backend']?.instances.length, 2, 'the cache holds the tables');
  t.equal(cache.services['backend']?.split, JSON.stringify({ v1: 1, v2: 1 }), 'the verified split, unwrapped');

  const restartedClient = new DiscoveryClient({ address: consul.address }, { requestTimeoutMs: 500 });
  t.teardown(() => restartedClient.consul.destroy());
  const second = await startOutbound(t, { source: consulRouteSource(restartedClient, watchOpts, signed()), tls }, opts);
  t.strictSame(await served(second.portOf('frontend')), { '200 h2-a': 10, '200 h3-b': 10 }, 'a restarted proxy routes from its disk cache while Consul is down');
});
