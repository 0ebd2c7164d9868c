/**
 * `weft up`'s plan and hosts: which pieces start with which arguments, what is
 * skipped and why, each simulated host's own configuration, the `--hosts`
 * checks, and the "what now" text.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { hostConfig, parseHostAddresses, simHosts, writeHostConfig } from '../../src/cli/up/hosts.js';
import { globalArgs, planUp, whatNow } from '../../src/cli/up/plan.js';
import { isWeftError } from '../../base/errors.js';

const config = loadConfig({ env: {}, flags: { dataDir: '/tmp/w', nodeName: 'n1', 'consul.address': 'http://127.0.0.1:8600' } });
const hosts = simHosts(config, ['127.0.0.2', '127.0.0.3']);

t.test('a bare machine gets every piece, in order: the cluster, then an agent and a proxy per host', async (t) => {
  const steps = planUp(config, { consulAnswers: false, caExists: false, schedulerAnswers: false }, { driver: 'process', hosts });
  t.strictSame(
    steps.map((s) => [s.name, s.kind, s.args.join(' '), s.host?.node, s.skip]),
    [
      ['consul', 'daemon', 'dev-consul --bind 127.0.0.1 --port 8600', undefined, undefined],
      ['ca', 'once', 'ca init', undefined, undefined],
      ['scheduler', 'daemon', 'scheduler', undefined, undefined],
      ['agent-1', 'daemon', 'agent --no-proxy --driver process --addr http://127.0.0.1:7400', 'n1-1', undefined],
      ['proxy-1', 'daemon', 'proxy', 'n1-1', undefined],
      ['agent-2', 'daemon', 'agent --no-proxy --driver process --addr http://127.0.0.1:7400', 'n1-2', undefined],
      ['proxy-2', 'daemon', 'proxy', 'n1-2', undefined],
    ],
  );
});

t.test('under docker each host registers only the containers it started (they share one daemon)', async (t) => {
  const steps = planUp(config, { consulAnswers: false, caExists: false, schedulerAnswers: false }, { driver: 'docker', hosts });
  t.strictSame(steps.find((s) => s.name === 'agent-2')!.args.slice(-2), ['--only-label', 'io.weft.host=n1-2']);
});

t.test('what already runs is skipped with a reason', async (t) => {
  const steps = planUp(config, { consulAnswers: true, caExists: true, schedulerAnswers: true }, { driver: 'process', hosts });
  t.strictSame(
    steps.filter((s) => s.skip !== undefined).map((s) => [s.name, s.skip]),
    [
      ['consul', 'Consul already answers at http://127.0.0.1:8600'],
      ['ca', 'a CA exists in /tmp/w/ca'],
      ['scheduler', 'a scheduler already answers at http://127.0.0.1:7400'],
    ],
  );
});

t.test('children get the configuration by flags that beat the environment, and always log JSON (to their files)', async (t) => {
  t.strictSame(globalArgs(config, 'w.yaml'), ['--config', 'w.yaml', '--data-dir', '/tmp/w', '--consul', 'http://127.0.0.1:8600', '--node', 'n1', '--datacenter', 'dc1', '--log-level', 'info', '--log-format', 'json']);
});

t.test('each host has its own node name, data directory, addresses, outbound range and proxy volume', async (t) => {
  t.strictSame(
    hosts.map((h) => [h.index, h.node, h.address, h.dataDir, h.outboundPortBase]),
    [
      [1, 'n1-1', '127.0.0.2', '/tmp/w/hosts/n1-1', 15101],
      [2, 'n1-2', '127.0.0.3', '/tmp/w/hosts/n1-2', 15201],
    ],
  );
  const withTokens = loadConfig({ env: {}, flags: { dataDir: '/tmp/w', nodeName: 'n1', 'client.token': 'operator-token-0123456789', 'scheduler.token': 'operator-token-0123456789' } });
  const c = hostConfig(withTokens, hosts[1]!, 'http://127.0.0.1:7400') as {
    dataDir: string;
    nodeName: string;
    client: Record<string, unknown>;
    scheduler: Record<string, unknown>;
    agent: { address: string; outboundPortBase: number; superviseProxy: boolean; hostVolumes: Record<string, string>; metrics: Record<string, unknown> };
    proxy: { inbound: { bind: string }; outbound: { bind: string }; metrics: { bind: string } };
    log: { format: string };
  };
  t.equal(c.dataDir, '/tmp/w/hosts/n1-2');
  t.equal(c.nodeName, 'n1-2');
  t.strictSame([c.agent.address, c.proxy.inbound.bind, c.proxy.metrics.bind, c.proxy.outbound.bind], ['127.0.0.3', '127.0.0.3', '127.0.0.3', '127.0.0.1']);
  t.equal(c.agent.outboundPortBase, 15201);
  t.equal(c.agent.superviseProxy, false, 'weft up runs the proxy itself');
  t.strictSame(c.agent.hostVolumes, { 'weft-proxy': '/tmp/w/hosts/n1-2/proxy' }, "the demo's apps read their outbound port from local.json there");
  t.notOk('bind' in c.agent.metrics, "the agent's metrics bind to its address");
  t.notOk('token' in c.client || 'token' in c.scheduler, 'the operator token stays out of the host files');
  t.equal(c.client['address'], 'http://127.0.0.1:7400');
  t.equal(c.log.format, 'json');
});

t.test("the host's file is a configuration its pieces load as it is", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-up-plan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const local = loadConfig({ env: {}, flags: { dataDir: dir, nodeName: 'n1' } });
  const [h] = simHosts(local, ['127.0.0.2']);
  writeHostConfig(local, h!, 'http://127.0.0.1:7400');
  t.equal(statSync(h!.configFile).mode & 0o777, 0o600);
  const loaded = loadConfig({ env: {}, file: h!.configFile });
  t.strictSame([loaded.nodeName, loaded.dataDir, loaded.agent.address, loaded.proxy.inbound.bind], ['n1-1', join(dir, 'hosts', 'n1-1'), '127.0.0.2', '127.0.0.2']);
});

t.test('--hosts takes 1 to 8 distinct loopback addresses other than 127.0.0.1, and names a bad one', async (t) => {
  t.strictSame(parseHostAddresses('127.0.0.2, 127.0.9.3'), ['127.0.0.2', '127.0.9.3']);
  for (const [text, bad] of [
    ['10.0.0.2', '10.0.0.2'],
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.2,127.0.0.2', '127.0.0.2,127.0.0.2'],
    ['127.0.0.300', '127.0.0.300'],
    ['', ''],
  ] as const) {
    const err = (() => {
      try {
        parseHostAddresses(text);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.ok(isWeftError(err, 'WEFT_ERR_ARGUMENT_INVALID'), text);
    t.match((err as Error).message, `--hosts: `);
    t.match((err as Error).message, `(got ${JSON.stringify(bad)})`);
  }
});

t.test('"what now" names each host, the logs and the next commands', async (t) => {
  const plain = whatNow(config, { driver: 'process', hosts, startedConsul: true });
  t.match(plain, 'n1-1       127.0.0.2: agent (process driver), proxy inbound mTLS :15443, metrics http://127.0.0.2:15090/metrics, outbound ports from 127.0.0.1:15101');
  t.match(plain, 'n1-2       127.0.0.3');
  t.match(plain, 'logs       /tmp/w/logs/');
  t.match(plain, 'WEFT_DATA_DIR=/tmp/w ./scripts/weft deploy examples/hello.yaml');
  t.match(plain, 'grafana/prometheus-http-sd.yml');
  const demo = whatNow(config, {
    driver: 'process',
    hosts,
    startedConsul: true,
    demo: ['backend', 'frontend', 'loadgen'],
    curl: { service: 'frontend', target: 'backend', address: '127.0.0.1', port: 15102 },
  });
  t.match(demo, './scripts/weft top');
  t.match(demo, "curl -H 'Host: backend' http://127.0.0.1:15102/   # through n1-1's proxy, as frontend");
  t.notMatch(demo, 'examples/hello.yaml');
  t.match(whatNow(config, { driver: 'docker', hosts, startedConsul: false }), 'start with `weft up --driver process`');
});
