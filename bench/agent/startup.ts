/**
 * Agent start-up latency, per driver: task start requested -> registered in
 * Consul -> check passing -> first request served THROUGH THE MESH (caller's
 * `weft proxy` on 127.0.0.2 -mTLS-> the task host's `weft proxy` on
 * 127.0.0.3 -> task), p50/p99 over N runs, cumulative and per stage. The
 * first request straight to the registered address is kept for reference.
 *
 *   npm run bench:agent [-- --runs 20]
 *
 * Real parts: `weft dev-consul` in its own process, two `weft proxy`
 * processes (mesh-hosts.ts), dockerd (started by hand or by the test setup)
 * with the demo image, the agent's Registrar and drivers.
 *
 * What "passing" measures: the check is the demo's (HTTP /health, interval
 * 1 s, the label minimum). Consul runs a new HTTP/TCP check's first probe
 * after a random stagger within the interval, and the dev agent does the same
 * (discovery/dev-agent/checks/runner.ts), so registered -> passing is about
 * uniform on [0, 1 s): p50 ~ 500 ms, p99 ~ 1 s, whatever the driver. Kept on
 * purpose: the bench reports what a real Consul cluster would show.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { type Driver, runTask, type TaskSpec } from '../../agent/driver.js';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { ProcessDriver } from '../../agent/drivers/process.js';
import { Registrar } from '../../agent/registrar.js';
import { createDiscoveryClient, type DiscoveryClient } from '../../discovery/client.js';
import { useDocker } from '../../test/helpers/docker.js';
import { freePort } from '../../test/helpers/ports.js';
import { type Mesh, startMesh } from './mesh-hosts.js';
import { eventually } from '../../test/helpers/eventually.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 15;
const bin = new URL('../../bin/weft.js', import.meta.url).pathname;
const demo = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;
/** The task host's address: tasks bind it, the registrar registers it. */
const HOST_ADDRESS = '127.0.0.3';
const STAGES = ['registered', 'passing', 'direct', 'proxied'] as const;
type Stage = (typeof STAGES)[number];

/** Polls every 5 ms at most (the stage times are what this bench measures). */
function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 5): Promise<T> {
  return eventually(fn, timeoutMs, what, everyMs) as Promise<T>;
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Whether `body` (the demo app's JSON) came from the instance on `port`. */
function fromPort(body: string, port: number): boolean {
  try {
    return (JSON.parse(body) as { port?: number }).port === port;
  } catch {
    return false;
  }
}

async function measure(driver: Driver, client: DiscoveryClient, mesh: Mesh, spec: (port: number, i: number) => TaskSpec): Promise<Record<Stage, number[]>> {
  const service = `bench-${driver.kind}`;
  const registrar = new Registrar({ driver, client, host: mesh.target.node, hostAddress: HOST_ADDRESS, meshPort: mesh.target.inboundPort, logger: pino({ level: 'silent' }), drainDelayMs: 0, labelFilter: `io.weft.test=${process.pid}` });
  await registrar.start();
  const out: Record<Stage, number[]> = { registered: [], passing: [], direct: [], proxied: [] };
  await mesh.call(service).catch(() => undefined); // the caller's proxy starts watching the service (an existing service's state)
  for (let i = 0; i < RUNS; i++) {
    const port = await freePort(HOST_ADDRESS);
    const t0 = performance.now();
    const id = await runTask(driver, spec(port, i));
    const sid = `${mesh.target.node}-${id.slice(0, 12)}`;
    await until(async () => ((await client.consul.agent.service.list()) as Record<string, unknown>)[sid], 10_000, 'registration');
    out.registered.push(performance.now() - t0);
    // Through the mesh, polled from registration on: it can only succeed once both proxies' watches see the instance passing.
    const proxied = until(async () => ((r) => (r.status === 200 && fromPort(r.body, port) ? performance.now() - t0 : undefined))(await mesh.call(service)), 10_000, 'first request through the mesh');
    await until(async () => {
      const e = (await client.consul.health.service({ service, passing: true })) as Array<{ Service: { ID: string } }>;
      return e.some((x) => x.Service.ID === sid) ? true : undefined;
    }, 10_000, 'passing');
    out.passing.push(performance.now() - t0);
    await until(async () => ((await fetch(`http://${HOST_ADDRESS}:${port}/`)).ok ? true : undefined), 10_000, 'first request direct');
    out.direct.push(performance.now() - t0);
    out.proxied.push(await proxied);
    await driver.remove(id, { force: true });
    // The next run starts from "no instance routable", as a scale-up from zero would.
    await until(async () => ((await mesh.call(service)).status === 503 ? true : undefined), 10_000, 'the removed instance to leave routing', 20);
  }
  registrar.stop();
  await driver.close();
  return out;
}

function report(results: Array<[string, Record<Stage, number[]>]>): void {
  const f = (v: number[]) => `${pct(v, 50).toFixed(0)} / ${pct(v, 99).toFixed(0)}`;
  console.log(`agent start-up, ${RUNS} runs per driver, p50 / p99 ms`);
  console.log('\ncumulative, from start requested:');
  console.log('driver   | registered   | passing      | served direct | served through the mesh');
  for (const [kind, r] of results) console.log(`${kind.padEnd(8)} | ${f(r.registered).padEnd(12)} | ${f(r.passing).padEnd(12)} | ${f(r.direct).padEnd(13)} | ${f(r.proxied)}`);
  console.log('\nper stage:');
  console.log('driver   | start -> registered | registered -> passing | passing -> served through the mesh');
  for (const [kind, r] of results) {
    const d = (a: Stage, b: Stage) => r[b].map((v, i) => v - r[a][i]!);
    console.log(`${kind.padEnd(8)} | ${f(r.registered).padEnd(19)} | ${f(d('registered', 'passing')).padEnd(21)} | ${f(d('passing', 'proxied'))}`);
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-agent-'));
  const consulPort = await freePort();
  const consul = spawn(process.execPath, [bin, 'dev-consul', '--port', String(consulPort), '--data-dir', join(dataDir, 'consul'), '--log-level', 'warn'], { stdio: 'ignore' });
  const client = createDiscoveryClient({ consul: { address: `127.0.0.1:${consulPort}` } });
  let mesh: Mesh | undefined;
  // The tests' Docker helper: starts dockerd when none answers (stopping it after the last user), builds
  // the demo image, and removes every container labelled with this process's pid at the end.
  const cleanups: Array<() => unknown> = [];
  try {
    await until(async () => ((await client.consul.agent.self()) ? true : undefined), 10_000, 'dev-consul');
    mesh = await startMesh(dataDir, `127.0.0.1:${consulPort}`, ['bench-docker', 'bench-process']);
    const labels = (port: number, kind: string) => ({ 'weft.service': `bench-${kind}`, 'weft.port': String(port), 'weft.check.http': '/health', 'weft.check.interval': '1s', 'weft.check.timeout': '500ms', 'io.weft.test': String(process.pid) });
    const env = (port: number) => ({ HOST: HOST_ADDRESS, PORT: String(port), DRAIN_MS: '0' });
    const results: Array<[string, Record<Stage, number[]>]> = [];
    if (!process.argv.includes('--no-docker')) {
      const d = await useDocker({ teardown: (fn) => cleanups.unshift(fn) });
      results.push(['docker', await measure(new DockerDriver(), client, mesh, (port, i) => ({ name: `weft-bench-${process.pid}-${i}`, image: d.image, env: env(port), labels: labels(port, 'docker') }))]);
    }
    const procs = new ProcessDriver(join(dataDir, 'processes'));
    cleanups.unshift(async () => Promise.all((await procs.list()).map((p) => procs.remove(p.id, { force: true }))));
    results.push(['process', await measure(procs, client, mesh, (port, i) => ({ name: `bench-${i}`, command: process.execPath, args: [demo], env: env(port), labels: labels(port, 'process') }))]);
    report(results);
  } finally {
    for (const fn of cleanups) await fn();
    client.close();
    await mesh?.stop();
    consul.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
