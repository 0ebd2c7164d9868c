/**
 * `weft up --demo` end to end, all real: the binary starts dev Consul, `ca
 * init`, the REAL `weft scheduler` and two simulated hosts (an agent with the
 * process driver and a proxy each, on 127.0.21.2 and 127.0.21.3: other test
 * files use other addresses), deploys the demo (frontend -> backend v1/v2
 * split 90/10, backend v1 autoscaled, a load generator ramping up), and shows
 * the traffic. Then, as a user would:
 * `weft stat --json` shows requests through the mesh on both versions and
 * the frontend -> backend edge, the live view's plain lines report the
 * autoscaler's first move, `weft logs` prints the pieces' logs pretty,
 * client commands work, and Ctrl-C (SIGINT) stops the demo's workloads and
 * every piece, leaving no process behind.
 *
 * Every port is a free loopback port; every wait is bounded.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import t from 'tap';
import { type StatsResponse, StatsResponseSchema } from '../../base/contracts/scheduler-api.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { alive, killAll, piecePids as harnessPieces, workloadPids as harnessWorkloads } from './up-harness.js';
import { freeOutboundBase, startWeftUp, weft } from './run-weft.js';

// Start-up, a ramp of traffic and a scaling decision on a slow 2-core machine: more than the default 120 s.
t.setTimeout(420_000);
const HOSTS = ['127.0.21.2', '127.0.21.3'];
const dir = mkdtempSync(join(tmpdir(), 'weft-up-'));
const dataDir = join(dir, 'data');
const [consulPort, apiPort, inboundPort, metricsPort, agentMetricsPort, outboundPort, dynamicMin] = await Promise.all([
  freePort(),
  freePort(),
  freePort(),
  freePort(),
  freePort(),
  freeOutboundBase(),
  freePort(),
]);
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  `dataDir: ${dataDir}
nodeName: up-test
consul: { address: "127.0.0.1:${consulPort}" }
scheduler: { port: ${apiPort}, reconcileIntervalMs: 1000, dynamicPortMin: ${dynamicMin}, dynamicPortMax: ${dynamicMin + 40} }
client: { address: "http://127.0.0.1:${apiPort}" }
proxy: { inbound: { port: ${inboundPort} }, metrics: { port: ${metricsPort} } }
agent: { outboundPortBase: ${outboundPort}, heartbeatTtlMs: 3000, drainDelayMs: 200, metrics: { port: ${agentMetricsPort} } }
log: { format: json }
`,
);
const env = { WEFT_CONFIG: configFile };

let up: ChildProcess | undefined;
let upOut = '';
let upExit: Promise<number | null> = Promise.resolve(null);

const seenWorkloads = new Set<number>();
const workloadPids = (): number[] => harnessWorkloads(dataDir, ['up-test-1', 'up-test-2']);
const piecePids = (): Map<string, number> => harnessPieces(upOut);
/** Kills whatever a failed run left (workloads, pieces, weft up). */
const killLeftovers = (): void => killAll([...seenWorkloads, ...workloadPids(), ...piecePids().values(), ...(up?.pid === undefined ? [] : [up.pid])]);

// If tap ends this process early (a timeout), the teardown below may not run: this does.
process.once('exit', () => {
  if (up !== undefined && up.exitCode === null && up.signalCode === null) killLeftovers();
});

t.teardown(async () => {
  if (up !== undefined && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGTERM');
    await Promise.race([upExit, new Promise((r) => setTimeout(r, 60_000).unref())]);
    if (up.exitCode === null) up.kill('SIGKILL');
  }
  // Whatever a failed run left behind: nothing may outlive the suite.
  killLeftovers();
  rmSync(dir, { recursive: true, force: true });
});

t.test('weft up --demo starts the cluster, two hosts and the demo, step by step', async (t) => {
  const run = startWeftUp(configFile, (text) => (upOut += text), () => upOut, ['--hosts', HOSTS.join(','), '--demo', '--start-timeout', '120s']);
  up = run.proc;
  upExit = run.exited;
  await run.ready;
  t.match(upOut, /^up {8}\| driver: process/m, 'it says which driver');
  for (const piece of ['consul', 'scheduler', 'agent-1', 'agent-2', 'proxy-1', 'proxy-2']) t.match(upOut, new RegExp(`^up {8}\\| ${piece} is healthy \\(pid \\d+`, 'm'), piece);
  t.match(upOut, /^up {8}\| ca: created in /m);
  t.match(upOut, /^up {8}\| hosts: up-test-1 127\.0\.21\.2, up-test-2 127\.0\.21\.3: agent \+ proxy each \(process driver\) \(\d+\.\ds\)$/m);
  t.match(upOut, /^up {8}\| demo: frontend -> backend v1\/v2 split 90\/10 through the mesh/m);
  t.match(upOut, `up-test-1  127.0.21.2: agent (process driver), proxy inbound mTLS :${inboundPort}, metrics http://127.0.21.2:${metricsPort}/metrics`);
  t.match(upOut, `logs       ${dataDir}/logs/`);
  t.notMatch(upOut, /^\{/m, "no piece's raw JSON log line reaches the terminal");
});

t.test('weft stat --json: traffic through the mesh on both versions of backend, split 90/10, and the frontend -> backend edge', async (t) => {
  let last: StatsResponse | undefined;
  const stats = await eventually(
    async () => {
      const r = await weft(['stat', '--json', '--window', '20s'], { env });
      if (r.code !== 0) throw new Error(r.stderr);
      last = JSON.parse(r.stdout) as StatsResponse;
      const backend = last.services.find((s) => s.service === 'backend');
      const v = (name: string) => backend?.versions.find((x) => x.version === name);
      const edge = last.edges.find((e) => e.source === 'frontend' && e.destination === 'backend');
      return (v('v1')?.rps ?? 0) > 0 && (v('v2')?.rps ?? 0) > 0 && (edge?.rps ?? 0) > 0 ? last : undefined;
    },
    120_000,
    'requests on both versions',
    2000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast answer: ${JSON.stringify(last)}\nweft up: ${upOut.slice(-3000)}`);
  });
  for (const p of workloadPids()) seenWorkloads.add(p);
  t.ok(Value.Check(StatsResponseSchema, stats), 'the answer is the contract');
  t.equal(stats.proxies.scraped, 2, "both hosts' proxies were read");
  const backend = stats.services.find((s) => s.service === 'backend')!;
  const v1 = backend.versions.find((v) => v.version === 'v1')!;
  const v2 = backend.versions.find((v) => v.version === 'v2')!;
  t.strictSame([v1.splitWeight, v2.splitWeight], [0.9, 0.1], 'the split weft up set');
  t.ok(v1.share !== null && v2.share !== null && v1.share > v2.share, `v1 takes most of the traffic (${v1.share} vs ${v2.share})`);
  t.ok((backend.successRate ?? 0) >= 0.95, `backend answers (success ${backend.successRate})`);
  const frontend = stats.services.find((s) => s.service === 'frontend')!;
  t.strictSame(new Set(frontend.instanceStats.map((i) => i.host)), new Set(['up-test-1', 'up-test-2']), 'frontend spread over both hosts');
  t.ok(stats.edges.some((e) => e.source === 'loadgen' && e.destination === 'frontend' && e.rps > 0), 'the load generator calls frontend through the mesh');

  const table = await weft(['stat', '--versions'], { env });
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^over the last \d+s from 2 proxies; scraped \d+s ago\nSERVICE +VERSION +INSTANCES +HOSTS +RPS +SUCCESS +P50 +P99 +SHARE\n/);
  t.match(table.stdout, /\n {10}v2 +1 +up-test-\d +[\d.]+ .*\(split 10%\)\n/);
});

t.test('the live view reports traffic and the autoscaler scaling backend v1 up, as it happens', async (t) => {
  await eventually(() => /^up {8}\| traffic: backend v2: /m.test(upOut), 60_000, 'a traffic line', 1000);
  await eventually(() => /^up {8}\| load: loadgen -> frontend: [\d.]+ req\/s, ramping up/m.test(upOut), 60_000, "the load generator's progress", 1000);
  const move = await eventually(() => /^up {8}\| scaling: backend\.v1 1 -> (\d): rps [\d.]+\/instance over target 10/m.exec(upOut), 150_000, `a scale-up decision\n${upOut.slice(-2000)}`, 1000);
  t.ok(Number(move[1]) > 1, `backend v1 went from 1 to ${move[1]}`);
});

t.test('weft logs prints the pieces logs pretty, and the client commands see both hosts', async (t) => {
  const logs = await weft(['logs', 'scheduler', '-n', '200'], { env });
  t.equal(logs.code, 0, logs.stderr);
  t.match(logs.stdout, /\] INFO \(scheduler\): scheduler API listening/);
  t.notMatch(logs.stdout, /^\{/m, 'no raw JSON');
  const all = await weft(['logs', '-n', '20'], { env });
  t.match(all.stdout, /^(agent-[12]|consul|proxy-[12]|scheduler|up|ca) +\| /m, 'merged, each line with its process');
  const nodes = await weft(['node', 'ls'], { env });
  t.equal(nodes.code, 0, nodes.stderr);
  t.match(nodes.stdout, /\nup-test-1 +127\.0\.21\.2 +ready +process +\d+ /);
  t.match(nodes.stdout, /\nup-test-2 +127\.0\.21\.3 +ready +process +\d+ /);
  const refused = await weft(['status'], { env: { ...env, WEFT_TOKEN: 'not-the-token-at-all' } });
  t.equal(refused.code, 2);
  t.match(refused.stderr, /^weft: WEFT_ERR_API_UNAUTHORIZED: .*the token from \$WEFT_TOKEN was refused/);
  const again = await weft(['--config', configFile, 'up', '--no-demo'], { env });
  t.equal(again.code, 2, 'a second weft up on the same data directory refuses');
  t.match(again.stderr, /^weft: WEFT_ERR_UP_START: weft up already runs with data directory .* \(pid \d+, since .*\): `weft down` stops it/);
});

t.test('Ctrl-C stops the demo it started, then every piece in reverse order; no process is left', async (t) => {
  for (const p of workloadPids()) seenWorkloads.add(p);
  const pieces = piecePids();
  t.ok(seenWorkloads.size >= 5, `the demo's processes were seen (${seenWorkloads.size})`);
  up!.kill('SIGINT');
  const code = await Promise.race([upExit, new Promise<'late'>((r) => setTimeout(() => r('late'), 90_000).unref())]);
  t.equal(code, 0, upOut.slice(-3000));
  t.match(upOut, /^up {8}\| Ctrl-C: stopping/m);
  t.match(upOut, /^up {8}\| stopping the demo's workloads weft up started \(backend, frontend, loadgen\)/m);
  t.match(upOut, /^up {8}\| the demo stopped$/m);
  const order = ['proxy-2', 'proxy-1', 'agent-2', 'agent-1', 'scheduler', 'consul'].map((p) => upOut.indexOf(`up        | stopping ${p}\n`));
  t.ok(order.every((i) => i > 0), `each piece was stopped: ${order}`);
  t.strictSame([...order].sort((a, b) => a - b), order, 'proxies, agents, scheduler, consul');
  t.match(upOut, /^up {8}\| stopped\n/m);
  t.strictSame([...seenWorkloads].filter(alive), [], "none of the demo's processes runs");
  t.strictSame([...pieces.values()].filter(alive), [], 'no piece runs');
  const health = await fetch(`http://127.0.0.1:${apiPort}/v1/health`).then(
    () => 'answered',
    () => 'refused',
  );
  t.equal(health, 'refused', 'the scheduler is gone');
});
