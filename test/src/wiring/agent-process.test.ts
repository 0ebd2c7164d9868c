/**
 * The assembled agent: weft-agent registration with capacity, attributes and a
 * TTL heartbeat; identities and local.json for a labelled container; the
 * supervised proxy restarted on a crash and adopted (not restarted) across an
 * agent restart.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HostAgent } from '../../../src/wiring/agent-process.js';
import { DockerDriver } from '../../../agent/drivers/docker.js';
import { agentServiceId } from '../../../agent/node.js';
import { CertificateAuthority } from '../../../certs/ca.js';
import { saveCa } from '../../../certs/store.js';
import { spiffeIdOf } from '../../../certs/verify.js';
import { X509Certificate } from 'node:crypto';
import { loadConfig } from '../../../src/config/load.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { useDocker } from '../../helpers/docker.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';
import { captureLogger, servicesWithPrefix } from '../../agent/helpers.js';

t.test('weft agent', async (t) => {
  const d = await useDocker(t);
  const consul = await startTestConsul(t);
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-agent-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  saveCa(dataDir, CertificateAuthority.create({ trustDomain: 'weft.test' }));
  const host = `agent-${process.pid}`;
  const config = loadConfig({
    env: {},
    flags: {
      dataDir,
      nodeName: host,
      'consul.address': consul.address,
      'agent.cpu': 3000,
      'agent.attributes.zone': 'z1',
      'agent.attributes.rack': 'r7',
      'agent.heartbeatTtlMs': 1500,
      'agent.drainDelayMs': 100,
      'agent.outboundPortBase': 25101,
    },
  });
  // A stand-in for `weft proxy`: the supervision contract does not depend on what the process is.
  const proxyCommand = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];
  const { logger } = captureLogger();
  let agent = await HostAgent.start({ config, logger, driver: new DockerDriver(), proxyCommand, watchWaitMs: 5000, labelFilter: `io.weft.test=${process.pid}` });
  t.teardown(async () => {
    agent.proxy?.stop({ stopProxy: true });
    await agent.close({ deregisterNode: true });
  });

  t.test('weft-agent is registered with capacity and attributes; its TTL heartbeat passes', async (t) => {
    const [svc] = await servicesWithPrefix(consul, agentServiceId(host));
    t.match(svc, { Service: 'weft-agent', Meta: { weft_host: host, weft_cpu: '3000', weft_driver: 'docker', weft_attr_zone: 'z1', weft_attr_rack: 'r7' } });
    t.ok(Number(svc?.Meta['weft_memory']) > 0, 'memory detected');
    await new Promise((r) => setTimeout(r, 1700)); // longer than the TTL: only beats keep it passing
    const checks = (await consul.consul.agent.check.list()) as Record<string, { ServiceID: string; Status: string }>;
    t.equal(Object.values(checks).find((c) => c.ServiceID === agentServiceId(host))?.Status, 'passing');
  });

  t.test('a labelled container gets a mesh identity and an outbound port in local.json', async (t) => {
    const port = await freePort();
    await d.cli('run', '-d', '--network', 'host', '--label', `io.weft.test=${process.pid}`, '--label', 'weft.service=shop', '--label', `weft.port=${port}`, '-e', `PORT=${port}`, d.image);
    const local = await eventually(async () => {
      const doc = JSON.parse(readFileSync(join(dataDir, 'proxy', 'local.json'), 'utf8')) as { services: Array<{ service: string; outboundPort: number }> };
      return doc.services.some((s) => s.service === 'shop') ? doc : undefined;
    }, 5000, 'local.json');
    t.match(local, { host, services: [{ service: 'shop', outboundPort: 25101 }] });
    const dir = join(dataDir, 'proxy', 'identities', 'shop');
    const cert = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    t.equal(spiffeIdOf(cert, { trustDomain: 'weft.test' }).uri, 'spiffe://weft.test/ns/default/svc/shop');
    t.ok(readFileSync(join(dir, 'bundle.pem'), 'utf8').includes('BEGIN CERTIFICATE'));
    const { statSync } = await import('node:fs');
    t.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600, 'key is 0600');
  });

  t.test('the proxy is restarted after a crash, and adopted across an agent restart', async (t) => {
    const first = await eventually(async () => agent.proxy?.pid, 3000, 'proxy pid');
    process.kill(first, 'SIGKILL');
    const second = await eventually(async () => {
      const pid = agent.proxy?.pid;
      return pid !== undefined && pid !== first ? pid : undefined;
    }, 5000, 'restarted proxy');
    t.not(second, first, 'a new proxy process');
    const certBefore = readFileSync(join(dataDir, 'proxy', 'identities', 'shop', 'cert.pem'), 'utf8');
    await agent.close();
    agent = await HostAgent.start({ config, logger, driver: new DockerDriver(), proxyCommand, watchWaitMs: 5000, labelFilter: `io.weft.test=${process.pid}` });
    t.equal(agent.proxy?.pid, second, 'the same proxy, adopted');
    t.equal(agent.proxy?.starts, 0, 'nothing started');
    t.equal(readFileSync(join(dataDir, 'proxy', 'identities', 'shop', 'cert.pem'), 'utf8'), certBefore, 'the identity is reused, not re-keyed');
  });
});
