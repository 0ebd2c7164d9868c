/**
 * `weft up` picks Docker when its daemon answers (the real dockerd
 * test/helpers/docker.ts starts) and says so: the demo runs as containers of
 * weft's demo image (the repository mounted read-only, the scripts run by its
 * node) on two simulated hosts sharing the daemon (127.0.24.2, 127.0.24.3),
 * traffic reaches both versions of backend through the mesh, and Ctrl-C
 * removes every container it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { StatsResponse } from '../../base/contracts/scheduler-api.js';
import { useDocker } from '../helpers/docker.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { freeOutboundBase, weft } from './run-weft.js';

t.setTimeout(360_000);
const ROOT = join(import.meta.dirname, '../..');
const docker = await useDocker(t);
const dir = mkdtempSync(join(tmpdir(), 'weft-up-docker-'));
const [consulPort, apiPort, inboundPort, metricsPort, agentMetricsPort] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  `dataDir: ${join(dir, 'data')}
nodeName: up-docker
consul: { address: "127.0.0.1:${consulPort}" }
scheduler: { port: ${apiPort} }
client: { address: "http://127.0.0.1:${apiPort}" }
proxy: { inbound: { port: ${inboundPort} }, metrics: { port: ${metricsPort} } }
agent: { outboundPortBase: ${await freeOutboundBase()}, metrics: { port: ${agentMetricsPort} } }
log: { format: json }
`,
);
const env = { WEFT_CONFIG: configFile };
const ours = async (): Promise<string[]> =>
  (await docker.cli('ps', '-a', '--filter', 'label=io.weft.host', '--format', '{{.Label "io.weft.host"}} {{.Names}}'))
    .split('\n')
    .filter((l) => l.startsWith('up-docker-'));

let up: ChildProcess | undefined;
let out = '';
let exited: Promise<number | null> = Promise.resolve(null);
t.teardown(async () => {
  if (up !== undefined && up.exitCode === null) {
    up.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000).unref())]);
    if (up.exitCode === null) up.kill('SIGKILL');
  }
  for (const line of await ours().catch(() => [])) await docker.cli('rm', '-f', line.split(' ')[1]!).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

t.test('with a Docker daemon answering, weft up runs the demo as containers and says so', async (t) => {
  // No --driver: the default, auto.
  up = spawn(process.execPath, [join(ROOT, 'bin/weft.js'), '--config', configFile, 'up', '--hosts', '127.0.24.2,127.0.24.3', '--demo', '--start-timeout', '120s'], {
    cwd: ROOT,
    env: { ...process.env, WEFT_CONFIG: '', WEFT_DATA_DIR: '', CONSUL_HTTP_ADDR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  up.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  up.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  exited = new Promise((r) => up!.once('exit', (code) => r(code)));
  await eventually(() => (out.includes('weft is up on this machine') ? true : up!.exitCode !== null ? Promise.reject(new Error(out)) : undefined), 300_000, 'weft up', 500);
  t.match(out, /^up {8}\| driver: docker, since a Docker daemon answers/m);
  t.match(out, /^up {8}\| image: weft-demo:[0-9a-f]{12} \(/m, "weft's demo image, built locally");
  t.match(out, /^up {8}\| hosts: up-docker-1 127\.0\.24\.2, up-docker-2 127\.0\.24\.3: agent \+ proxy each \(docker driver\)/m);
  t.ok((await ours()).length >= 5, 'backend x2, frontend x2 and loadgen are containers');

  const stats = await eventually(
    async () => {
      const r = await weft(['stat', '--json'], { env });
      const s = JSON.parse(r.stdout) as StatsResponse;
      const backend = s.services.find((x) => x.service === 'backend');
      return backend !== undefined && backend.versions.length === 2 && backend.versions.every((v) => v.rps > 0) ? s : undefined;
    },
    120_000,
    'traffic on both versions',
    2000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${out.slice(-3000)}`);
  });
  t.ok(stats.edges.some((e) => e.source === 'frontend' && e.destination === 'backend' && e.rps > 0), 'frontend calls backend through the mesh');
});

t.test("Ctrl-C stops the demo's containers, then every piece", async (t) => {
  up!.kill('SIGINT');
  t.equal(await Promise.race([exited, new Promise((r) => setTimeout(() => r('late'), 120_000).unref())]), 0, out.slice(-2000));
  t.match(out, /^up {8}\| the demo stopped$/m);
  t.strictSame(await ours(), [], 'no container of its hosts is left');
});
