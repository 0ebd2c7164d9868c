/**
 * Agent start-up latency, per driver: task start requested -> registered in
 * Consul -> check passing -> first request served, p50/p99 over N runs.
 *
 *   npm run bench:agent [-- --runs 20]
 *
 * Real parts: `weft dev-consul` in its own process, dockerd (started by hand or
 * by the test setup) with the demo image, the agent's Registrar and drivers.
 * The first request goes to the registered address directly, not through
 * `weft proxy` (the proxy's own hop is measured by bench:proxy); "passing"
 * is dominated by the check interval (1 s, the label minimum) and Consul's
 * random first-probe stagger within it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { type Driver, runTask, type TaskSpec } from '../../agent/driver.js';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { ProcessDriver } from '../../agent/drivers/process.js';
import { Registrar } from '../../agent/registrar.js';
import { createDiscoveryClient, type DiscoveryClient } from '../../discovery/client.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 15;
const bin = new URL('../../bin/weft.js', import.meta.url).pathname;
const demo = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;
const root = new URL('../..', import.meta.url).pathname;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function measure(driver: Driver, client: DiscoveryClient, spec: (port: number, i: number) => TaskSpec): Promise<Record<string, number[]>> {
  const registrar = new Registrar({ driver, client, host: 'bench', hostAddress: '127.0.0.1', meshPort: 15443, logger: pino({ level: 'silent' }), drainDelayMs: 0 });
  await registrar.start();
  const out: Record<string, number[]> = { registered: [], passing: [], served: [] };
  for (let i = 0; i < RUNS; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const id = await runTask(driver, spec(port, i));
    const sid = `bench-${driver.kind === 'docker' ? id.slice(0, 12) : id.slice(0, 12)}`;
    await until(async () => ((await client.consul.agent.service.list()) as Record<string, unknown>)[sid], 10_000, 'registration');
    out['registered']!.push(performance.now() - t0);
    await until(async () => {
      const e = (await client.consul.health.service({ service: `bench-${driver.kind}`, passing: true })) as Array<{ Service: { ID: string } }>;
      return e.some((x) => x.Service.ID === sid) ? true : undefined;
    }, 10_000, 'passing');
    out['passing']!.push(performance.now() - t0);
    await until(async () => ((await fetch(`http://127.0.0.1:${port}/`)).ok ? true : undefined), 10_000, 'first request');
    out['served']!.push(performance.now() - t0);
    await driver.remove(id, { force: true });
  }
  registrar.stop();
  await driver.close();
  return out;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-agent-'));
  const consulPort = await freePort();
  const consul = spawn(process.execPath, [bin, 'dev-consul', '--port', String(consulPort), '--data-dir', dataDir, '--log-level', 'warn'], { stdio: 'ignore' });
  const client = createDiscoveryClient({ consul: { address: `127.0.0.1:${consulPort}` } });
  try {
    await until(async () => ((await client.consul.agent.self()) ? true : undefined), 10_000, 'dev-consul');
    const labels = (port: number, kind: string) => ({ 'weft.service': `bench-${kind}`, 'weft.port': String(port), 'weft.check.http': '/health', 'weft.check.interval': '1s', 'weft.check.timeout': '500ms', 'io.weft.test': String(process.pid) });
    const results: Array<[string, Record<string, number[]>]> = [];
    const docker = new DockerDriver();
    if (await docker.ping()) {
      const image = execFileSync('bash', [join(root, 'scripts', 'build-test-image.sh')], { encoding: 'utf8' }).trim();
      results.push(['docker', await measure(docker, client, (port, i) => ({ name: `weft-bench-${process.pid}-${i}`, image, env: { PORT: String(port) }, labels: labels(port, 'docker') }))]);
    } else {
      console.log('docker: no daemon answers; skipped');
    }
    const procDir = join(dataDir, 'processes');
    results.push(['process', await measure(new ProcessDriver(procDir), client, (port, i) => ({ name: `bench-${i}`, command: process.execPath, args: [demo], env: { PORT: String(port) }, labels: labels(port, 'process') }))]);
    console.log(`agent start-up, ${RUNS} runs per driver (ms from start requested; first request direct, not through weft proxy)`);
    console.log('driver   | registered p50/p99 | passing p50/p99 | first request p50/p99');
    for (const [kind, r] of results) {
      const f = (k: string) => `${pct(r[k]!, 50).toFixed(0)} / ${pct(r[k]!, 99).toFixed(0)}`.padEnd(k === 'registered' ? 18 : 15);
      console.log(`${kind.padEnd(8)} | ${f('registered')} | ${f('passing')} | ${f('served')}`);
    }
  } finally {
    client.close();
    consul.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
