/**
 * `weft up --acl` end to end, all real: the binary starts dev Consul with ACLs
 * on and default deny, loads the shipped policies (docs/acl/*.hcl) through
 * the ACL HTTP API, and starts the REAL scheduler, two simulated hosts (an
 * agent and a proxy each, on 127.0.51.2 and 127.0.51.3: other test files use
 * other addresses) and Prometheus, each with a Consul token of its own. Then,
 * as a user and as an attacker on this machine would:
 * Consul refuses a request without a token, and each component's token
 * outside its grants (the proxy's cannot write `weft/allocs/`, the agent's
 * cannot write `weft/intentions/`); `weft deploy examples/hello.yaml` runs
 * the job and a request through a host's proxy reaches it, an intention set
 * through the scheduler is enforced by the proxies; Prometheus finds every
 * piece through Consul with its own token; no token is in a log or a process
 * argument; Ctrl-C stops everything.
 *
 * Every port is a free loopback port; every wait is bounded.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { isWeftError } from '../../base/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { policyRules, setUpAcl, tokenSpecs } from '../../src/cli/up/acl.js';
import { simHosts } from '../../src/cli/up/hosts.js';
import { planUp } from '../../src/cli/up/plan.js';
import { prometheusUpConfig } from '../../src/cli/up/prometheus.js';
import { aclCall } from '../integration/acl-tokens.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { meshGet } from '../helpers/mesh-get.js';
import { alive, killAll, piecePids as harnessPieces, workloadPids as harnessWorkloads } from './up-harness.js';
import { freeOutboundBase, startWeftUp, weft } from './run-weft.js';

// Start-up of six pieces and Prometheus, a deploy and a stop on a slow 2-core machine: more than the default 120 s.
t.setTimeout(300_000);
const HOSTS = ['127.0.51.2', '127.0.51.3'];
const NODES = ['up-acl-1', 'up-acl-2'];
const ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'weft-up-acl-'));
const dataDir = join(dir, 'data');
const aclDir = join(dataDir, 'acl');
const [consulPort, apiPort, inboundPort, metricsPort, agentMetricsPort, promPort, outboundPort, dynamicMin] = await Promise.all([
  freePort(),
  freePort(),
  freePort(),
  freePort(),
  freePort(),
  freePort(),
  freeOutboundBase(),
  freePort(),
]);
const consul = `127.0.0.1:${consulPort}`;
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  `dataDir: ${dataDir}
nodeName: up-acl
consul: { address: "${consul}" }
scheduler: { port: ${apiPort}, reconcileIntervalMs: 1000, dynamicPortMin: ${dynamicMin}, dynamicPortMax: ${dynamicMin + 40} }
client: { address: "http://127.0.0.1:${apiPort}" }
proxy: { inbound: { port: ${inboundPort} }, metrics: { port: ${metricsPort} }, reloadIntervalMs: 200 }
agent: { outboundPortBase: ${outboundPort}, heartbeatTtlMs: 3000, drainDelayMs: 200, stopDeadlineMs: 3000, metrics: { port: ${agentMetricsPort} } }
log: { format: json }
`,
);
const env = { WEFT_CONFIG: configFile };

let up: ChildProcess | undefined;
let upOut = '';
let upExit: Promise<number | null> = Promise.resolve(null);

/** The token in `<dataDir>/acl/<name>.token`. */
function token(name: string): string {
  return readFileSync(join(aclDir, `${name}.token`), 'utf8').trim();
}

const seenWorkloads = new Set<number>();
const workloadPids = (): number[] => harnessWorkloads(dataDir, NODES);
const piecePids = (): Map<string, number> => harnessPieces(upOut);
/** Kills whatever a failed run left (workloads, pieces, weft up). */
const killLeftovers = (): void => killAll([...seenWorkloads, ...workloadPids(), ...piecePids().values(), ...(up?.pid === undefined ? [] : [up.pid])]);

process.once('exit', () => {
  if (up !== undefined && up.exitCode === null && up.signalCode === null) killLeftovers();
});

t.teardown(async () => {
  if (up !== undefined && up.exitCode === null && up.signalCode === null) {
    await weft(['scale', 'hello', '0'], { env }).catch(() => undefined);
    up.kill('SIGTERM');
    await Promise.race([upExit, new Promise((r) => setTimeout(r, 60_000).unref())]);
    if (up.exitCode === null) up.kill('SIGKILL');
  }
  killLeftovers();
  rmSync(dir, { recursive: true, force: true });
});


/** A process's environment variable, from /proc (readable by its user only). */
function environOf(pid: number, name: string): string | undefined {
  const entry = readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0')
    .find((e) => e.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}

t.test('the plan under --acl: the dev Consul enforces ACLs, default deny, its management token given by file; without --acl as before', async (t) => {
  const c = loadConfig({ env: {}, flags: { dataDir: '/tmp/w', nodeName: 'n', 'consul.address': '127.0.0.1:8600' } });
  const hosts = simHosts(c, ['127.0.0.2']);
  const facts = { consulAnswers: false, caExists: false, schedulerAnswers: false };
  const consulArgs = (acl?: { managementTokenFile: string }) => planUp(c, facts, { driver: 'process', hosts, acl }).find((x) => x.name === 'consul')!.args.join(' ');
  t.equal(consulArgs(), 'dev-consul --bind 127.0.0.1 --port 8600', 'without --acl');
  t.equal(consulArgs({ managementTokenFile: '/tmp/w/acl/management.token' }), 'dev-consul --bind 127.0.0.1 --port 8600 --acl --acl-default-policy deny --acl-bootstrap-token-file /tmp/w/acl/management.token', 'with --acl');
});

t.test('a token per process, each linked to its component policy; an agent policy per host', async (t) => {
  t.strictSame(
    tokenSpecs(['n-1', 'n-2'], true).map((x) => [x.name, x.policy]),
    [
      ['scheduler', 'weft-scheduler'],
      ['agent-n-1', 'weft-agent-n-1'],
      ['agent-n-2', 'weft-agent-n-2'],
      ['proxy-n-1', 'weft-proxy'],
      ['proxy-n-2', 'weft-proxy'],
      ['prometheus', 'weft-prometheus'],
    ],
    'scheduler, an agent and a proxy per host, Prometheus',
  );
  t.notOk(tokenSpecs(['n-1'], false).some((x) => x.component === 'prometheus'), 'no Prometheus token without --prometheus');
  const shipped = readFileSync(join(ROOT, 'docs', 'acl', 'agent.hcl'), 'utf8');
  const rules = policyRules(shipped, { node: 'n-1' });
  t.match(rules, 'key_prefix "weft/allocs/n-1/"', "the agent reads only its host's allocations");
  t.notMatch(rules, '<host>', 'every <host> replaced');
});

t.test('Prometheus under --acl sends its Consul token with every SD request', async (t) => {
  const shipped = readFileSync(join(ROOT, 'grafana', 'prometheus-http-sd.yml'), 'utf8');
  const sds = (text: string) => (parse(text) as { scrape_configs: Array<{ http_sd_configs?: Array<{ authorization?: unknown }> }> }).scrape_configs.flatMap((j) => j.http_sd_configs ?? []);
  const base = { consulAddress: '127.0.0.1:8600', rulesDir: '/r', tokenFile: '/w/scheduler/token' };
  const withToken = sds(prometheusUpConfig(shipped, { ...base, consulTokenFile: '/w/acl/prometheus.token' }));
  t.ok(withToken.length >= 4, `${withToken.length} SD configs`);
  t.ok(
    withToken.every((sd) => JSON.stringify(sd.authorization) === JSON.stringify({ type: 'Bearer', credentials_file: '/w/acl/prometheus.token' })),
    'each carries the token file',
  );
  t.ok(
    sds(prometheusUpConfig(shipped, base)).every((sd) => sd.authorization === undefined),
    'without --acl, none',
  );
});

t.test('weft up --acl refuses a Consul it did not start, saying why', async (t) => {
  const other = await startTestConsul(t);
  const otherDir = mkdtempSync(join(tmpdir(), 'weft-up-acl-refused-'));
  t.teardown(() => rmSync(otherDir, { recursive: true, force: true }));
  const otherConfig = join(otherDir, 'config.yaml');
  writeFileSync(otherConfig, `dataDir: ${join(otherDir, 'data')}\nconsul: { address: "${other.address}" }\nscheduler: { port: ${await freePort()} }\n`);
  const refused = await weft(['--config', otherConfig, 'up', '--acl', '--no-demo', '--driver', 'process'], { cwd: ROOT });
  t.equal(refused.code, 2, 'exits 2');
  t.match(refused.stderr, `weft: WEFT_ERR_UP_START: --acl: Consul already answers and weft up did not start it, and there is no ${join(otherDir, 'data', 'acl', 'management.token')}`, 'names the missing management token file');
  t.strictSame(await other.consul.agent.service.list(), {}, 'nothing started against it');
  // A management token from an earlier run does not turn that Consul's ACLs on.
  const err = await setUpAcl({
    consulAddress: other.address,
    dataDir: join(otherDir, 'data'),
    management: { file: '/x/management.token', token: '0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a00' },
    nodes: ['n-1'],
    prometheus: false,
    policiesDir: join(ROOT, 'docs', 'acl'),
  }).catch((e: unknown) => e);
  t.ok(isWeftError(err, 'WEFT_ERR_UP_START'), 'WEFT_ERR_UP_START');
  t.match((err as Error).message, `--acl: Consul at ${other.address} answers with ACLs off (ACL support disabled)`, 'says the ACLs are off');
});

t.test('weft up --acl: ACLs on with default deny, the shipped policies, a token per process, said step by step', async (t) => {
  const run = startWeftUp(configFile, (text) => (upOut += text), () => upOut, [
    '--hosts',
    HOSTS.join(','),
    '--no-demo',
    '--acl',
    '--prometheus',
    `127.0.0.1:${promPort}`,
    '--start-timeout',
    '120s',
  ]);
  up = run.proc;
  upExit = run.exited;
  await run.ready;
  t.match(upOut, /^up {8}\| consul: dev Consul on 127\.0\.0\.1:\d+, ACLs on \(default deny\) \(pid \d+\)/m, 'the consul step says ACLs are on');
  t.match(upOut, `--acl --acl-default-policy deny --acl-bootstrap-token-file ${aclDir}/management.token`, 'the management token by its file, never as an argument');
  t.match(
    upOut,
    `acl: on, default deny: policies weft-scheduler, weft-agent-${NODES[0]}, weft-agent-${NODES[1]}, weft-proxy, weft-prometheus; a token for each of 6 processes, in ${aclDir}/ (management token ${aclDir}/management.token, 0600)`,
    'the acl step names the policies and where the tokens are',
  );
  for (const piece of ['consul', 'scheduler', 'agent-1', 'agent-2', 'proxy-1', 'proxy-2', 'prometheus']) t.match(upOut, new RegExp(`^up {8}\\| ${piece} is healthy \\(pid \\d+`, 'm'), piece);
  t.match(upOut, `  ACLs       on, default deny; a Consul token per process in ${aclDir}/; the management token in ${aclDir}/management.token`, '"weft is up" says where the tokens are');

  t.equal(statSync(aclDir).mode & 0o777, 0o700, 'the token folder is 0700');
  const files = readdirSync(aclDir).sort();
  t.strictSame(
    files,
    ['agent-up-acl-1.token', 'agent-up-acl-2.token', 'management.token', 'prometheus.token', 'proxy-up-acl-1.token', 'proxy-up-acl-2.token', 'scheduler.token'],
    'a token file per process, and the management token',
  );
  for (const f of files) t.equal(statSync(join(aclDir, f)).mode & 0o777, 0o600, `${f} is 0600`);
  t.equal(new Set(files.map((f) => token(f.replace(/\.token$/, '')))).size, files.length, 'seven different tokens');
});

t.test('each process runs with its own token, in its environment and nowhere in its arguments', async (t) => {
  const pids = piecePids();
  const expected: Record<string, string> = {
    scheduler: token('scheduler'),
    'agent-1': token(`agent-${NODES[0]}`),
    'agent-2': token(`agent-${NODES[1]}`),
    'proxy-1': token(`proxy-${NODES[0]}`),
    'proxy-2': token(`proxy-${NODES[1]}`),
  };
  for (const [piece, secret] of Object.entries(expected)) t.equal(environOf(pids.get(piece)!, 'CONSUL_HTTP_TOKEN'), secret, `${piece}: CONSUL_HTTP_TOKEN is its own token`);
  const secrets = readdirSync(aclDir).map((f) => token(f.replace(/\.token$/, '')));
  for (const [piece, pid] of pids) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    t.notOk(
      secrets.some((s) => argv.includes(s)),
      `${piece}: no token in its arguments (ps)`,
    );
  }
  const hostConfig = readFileSync(join(dataDir, 'hosts', NODES[0]!, 'config.json'), 'utf8');
  t.notOk(secrets.some((s) => hostConfig.includes(s)), "no token in a host's config file");
});

t.test('Consul refuses a request without a token, and each token outside its grants', async (t) => {
  const management = token('management');
  const kv = (key: string, tok?: string, body?: string) =>
    aclCall(consul, body === undefined ? 'GET' : 'PUT', `/v1/kv/${key}`, { ...(tok === undefined ? {} : { token: tok }), ...(body === undefined ? {} : { body }) });
  t.equal((await kv('weft/ca/roots', management)).status, 200, 'the management token reads the trust bundle ca init published');

  t.equal((await kv('weft/ca/roots')).status, 403, 'anonymous KV read: 403');
  t.equal((await kv(`weft/allocs/${NODES[0]}/evil`, undefined, '{"id":"evil"}')).status, 403, 'anonymous KV write: 403');
  t.strictSame((await aclCall(consul, 'GET', '/v1/catalog/services')).json, {}, 'anonymous catalog: empty');

  const proxy = token(`proxy-${NODES[0]}`);
  const agent = token(`agent-${NODES[0]}`);
  t.equal((await kv(`weft/allocs/${NODES[0]}/evil`, proxy, '{"id":"evil"}')).status, 403, "the proxy's token cannot write weft/allocs/");
  t.equal((await kv('weft/intentions/evil/hello', agent, '{"action":"allow"}')).status, 403, "the agent's token cannot write weft/intentions/");
  t.equal((await kv(`weft/allocs/${NODES[0]}/evil`, agent, '{"id":"evil"}')).status, 403, "the agent's token cannot write an allocation, even for its own host");
  t.equal((await kv(`weft/allocs/${NODES[1]}/x`, agent)).status, 403, "the agent's token cannot read another host's allocations");
  t.equal((await kv('weft/splits/hello', token('prometheus'), '{}')).status, 403, "Prometheus' token writes nothing");
  t.equal((await kv(`weft/allocs/${NODES[0]}/evil`, management)).status, 404, 'nothing was planted');
});

t.test('a job deployed through the scheduler runs and is reachable through the mesh; intentions are enforced', async (t) => {
  const deployed = await weft(['deploy', 'examples/hello.yaml', '--timeout', '90s'], { env, cwd: ROOT, timeoutMs: 120_000 });
  if (deployed.code !== 0) t.comment(`${deployed.stdout}\n${deployed.stderr}\n${upOut.slice(-2000)}`);
  t.equal(deployed.code, 0, 'weft deploy examples/hello.yaml succeeds');
  t.match(deployed.stdout, /hello: 2\/2 running, 2 healthy/, 'both instances run and pass their checks');
  for (const p of workloadPids()) seenWorkloads.add(p);

  const localJson = join(dataDir, 'hosts', NODES[0]!, 'proxy', 'local.json');
  const port = await eventually(
    () => (JSON.parse(readFileSync(localJson, 'utf8')) as { services: Array<{ service: string; outboundPort: number }> }).services.find((s) => s.service === 'hello')?.outboundPort,
    30_000,
    "hello's outbound port on the first host",
    200,
  );
  const answer = await eventually(
    async () => {
      const r = await meshGet('127.0.0.1', port, 'hello');
      return r.status === 200 ? r : undefined;
    },
    30_000,
    'a request through the proxy',
    250,
  );
  t.match(JSON.parse(answer.body), { service: 'hello', ok: true }, 'answered by an instance, through weft proxy over mTLS');

  const deny = await weft(['deny', 'hello', 'hello'], { env });
  t.equal(deny.code, 0, `weft deny hello hello ${deny.stderr}`);
  const denied = await eventually(
    async () => {
      const r = await meshGet('127.0.0.1', port, 'hello');
      return r.status === 403 ? r : undefined;
    },
    20_000,
    'the deny enforced',
    200,
  );
  t.match(denied.body, /WEFT_ERR_INTENTION_DENIED/, 'the proxies read the signed intention with their own tokens');
  t.equal((await weft(['allow', 'hello', 'hello'], { env })).code, 0, 'weft allow hello hello');
  await eventually(async () => (await meshGet('127.0.0.1', port, 'hello')).status === 200, 20_000, 'allowed again', 200);

  const scaled = await weft(['scale', 'hello', '0'], { env });
  t.equal(scaled.code, 0, `weft scale hello 0 ${scaled.stderr}`);
  await eventually(() => [...seenWorkloads].every((p) => !alive(p)), 30_000, "hello's instances stopped", 250);
});

t.test('Prometheus finds every piece through Consul with its own token', async (t) => {
  const jobs = await eventually(
    async () => {
      const res = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()) as { data: { activeTargets: Array<{ labels: { job: string } }> } };
      const count = (job: string) => res.data.activeTargets.filter((x) => x.labels.job === job).length;
      const c = { 'weft-proxy': count('weft-proxy'), 'weft-agent': count('weft-agent'), 'weft-scheduler': count('weft-scheduler') };
      return c['weft-proxy'] === 2 && c['weft-agent'] === 2 && c['weft-scheduler'] === 1 ? c : undefined;
    },
    40_000,
    'targets discovered',
    500,
  );
  t.strictSame(jobs, { 'weft-proxy': 2, 'weft-agent': 2, 'weft-scheduler': 1 }, 'both proxies, both agents and the scheduler are targets');
  const promConfig = readFileSync(join(dataDir, 'prometheus', 'prometheus.yml'), 'utf8');
  t.match(promConfig, `credentials_file: ${aclDir}/prometheus.token`, 'its SD requests carry its token file');
});

t.test('no process was refused anything it needs, and no token is in a log', async (t) => {
  const logs = readdirSync(join(dataDir, 'logs')).filter((f) => f.endsWith('.log'));
  const text = logs.map((f) => readFileSync(join(dataDir, 'logs', f), 'utf8')).join('\n');
  t.notMatch(text, /Permission denied|ACL not found/, 'no refusal in any log');
  const secrets = readdirSync(aclDir).map((f) => token(f.replace(/\.token$/, '')));
  t.notOk(
    secrets.some((s) => text.includes(s) || upOut.includes(s)),
    'no token in the logs or on the terminal',
  );
});

t.test('Ctrl-C stops every piece; nothing is left', async (t) => {
  const pieces = piecePids();
  up!.kill('SIGINT');
  const code = await Promise.race([upExit, new Promise<'late'>((r) => setTimeout(() => r('late'), 90_000).unref())]);
  if (code !== 0) t.comment(upOut.slice(-3000));
  t.equal(code, 0, 'weft up exits 0');
  t.match(upOut, /^up {8}\| stopped\n/m, 'and says it stopped');
  t.strictSame([...pieces.values()].filter(alive), [], 'no piece runs');
  t.strictSame([...seenWorkloads].filter(alive), [], "none of hello's processes runs");
});
