/**
 * Scale from zero, measured: a service whose policy allows 0 (`min: 0`,
 * `idleToZero: 2s`) is left idle until it is at 0, with no instance
 * registered and the agent done removing the last one; then
 *
 *   direct      the demo app started by hand on the instances' host, as the
 *               driver would (a process, or a container with the same image,
 *               CPU and memory), timed from the start call to its first 200
 *               (polled every 5 ms): the instance's own start time;
 *   cold        one GET through the caller's proxy, held there (the service
 *               is at zero), timed from sending to the answer, which must be
 *               a 200 with x-weft-cold-start: true;
 *   overhead    cold - direct: what weft adds to the instance's start.
 *
 * During the cold request, Consul blocking queries time each stage on the
 * way (wall clock, from the request leaving): the proxy's activation key
 * written, the group's count written by the leader, the allocation written
 * by the reconciler, the instance registered by the agent, its check
 * passing, the answer. Runs one after another; the direct start runs right
 * before each cold one, so both see the same machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type Docker from 'dockerode';
import { freePort } from '../../test/helpers/ports.js';
import { ADDRESSES, type Cluster, TARGET_NODE, TOKEN } from './cluster.js';
import { parseFamilies } from '../../src/wiring/proxy-scrape.js';
import { ConsulWatch, healthEntries, kvValue, kvValues } from './watch.js';

const DEMO = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;
/** What each instance of the benched services gets: the same for the direct start. */
export const TASK_RESOURCES = { cpu: 500, memory: 128 } as const;

/** One run's figures (ms). */
export interface ColdRun {
  direct: number;
  cold: number;
  status: number;
  coldHeader: boolean;
  /** Stage -> ms after the cold request left (undefined: not seen). */
  stages: Record<ColdStage, number | undefined>;
}

export const COLD_STAGES = ['activation key', 'count written', 'allocation written', 'registered', 'passing', 'answered'] as const;
export type ColdStage = (typeof COLD_STAGES)[number];

/** How a driver's instance is started by hand. */
export interface DirectStarter {
  /** Starts one instance listening on `port` of the target host; resolves with a stop function. */
  start(port: number): Promise<() => Promise<void>>;
}

/** The process driver's instance: `node scripts/demo-app.mjs`. */
export const processStarter: DirectStarter = {
  async start(port) {
    const child: ChildProcess = spawn(process.execPath, [DEMO], { stdio: 'ignore', env: { ...process.env, HOST: ADDRESSES.target, PORT: String(port), DRAIN_MS: '0' } });
    return async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    };
  },
};

/** The Docker driver's instance: the demo image on the host network, as agent/drivers/docker.ts creates it. */
export function dockerStarter(docker: Docker, image: string, labels: Record<string, string>): DirectStarter {
  return {
    async start(port) {
      const c = await docker.createContainer({
        Image: image,
        Entrypoint: ['/bin/node'],
        Cmd: ['/app/server.mjs'],
        Env: [`HOST=${ADDRESSES.target}`, `PORT=${port}`, 'DRAIN_MS=0'],
        Labels: labels,
        HostConfig: { NetworkMode: 'host', NanoCpus: TASK_RESOURCES.cpu * 1_000_000, Memory: TASK_RESOURCES.memory * 1024 * 1024, RestartPolicy: { Name: 'no' } },
      });
      await c.start();
      return async () => {
        await c.remove({ force: true }).catch(() => undefined);
      };
    },
  };
}

/** Start -> first 200 of one instance started by hand, in ms (at most 60 s). */
export async function directStart(starter: DirectStarter): Promise<number> {
  const port = await freePort(ADDRESSES.target);
  const t0 = performance.now();
  const stop = await starter.start(port);
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ok = await get(`http://${ADDRESSES.target}:${port}/`, 1000).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return performance.now() - t0;
      if (Date.now() > deadline) throw new Error('the directly started instance did not answer within 60 s');
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await stop();
  }
}

/** Runs `runs` cold starts of `job` (service of the same name, already deployed with min 0). */
export async function measureColdStarts(cluster: Cluster, job: string, starter: DirectStarter, runs: number, log: (line: string) => void): Promise<ColdRun[]> {
  const out: ColdRun[] = [];
  const through = (path: string, timeoutMs: number) => get(`http://${ADDRESSES.caller}:${cluster.outboundPort}${path}`, timeoutMs, job);
  // Once warm: an answer through the mesh (the first request may itself be a cold start).
  await until(async () => (await through('/warm', 60_000)).status === 200, 120_000, `${job} answering through the mesh`);
  for (let i = 0; i < runs; i++) {
    await until(async () => (await count(cluster, job)) === 0, 120_000, `${job} at 0 (idleToZero)`);
    await until(async () => (await registered(cluster, job)) === 0, 60_000, `${job}'s instance gone from Consul`);
    await until(async () => (await zeroMarked(cluster, job)) === true, 30_000, `weft/zero/${job}`);
    // The agent done stopping the last instance (drain delay, SIGTERM, removal): a cold start long
    // after the scale to zero finds it idle, and its reconciles run one at a time.
    await until(() => agentCaughtUp(cluster), 60_000, `${TARGET_NODE}'s agent done with removed allocations`);
    const direct = await directStart(starter);

    const stages: ColdRun['stages'] = Object.fromEntries(COLD_STAGES.map((s) => [s, undefined])) as ColdRun['stages'];
    let t0 = 0;
    const mark = (stage: ColdStage, at: number): void => {
      if (t0 !== 0 && stages[stage] === undefined) stages[stage] = at - t0;
    };
    const watches = [
      new ConsulWatch(cluster.consulAddress, `/v1/kv/weft/activate/${job}`, (body, at) => body !== undefined && mark('activation key', at)),
      new ConsulWatch(cluster.consulAddress, `/v1/kv/weft/jobs/${job}`, (body, at) => {
        const rec = kvValue<{ spec: { groups: Array<{ count?: number }> } }>(body);
        if ((rec?.spec.groups[0]?.count ?? 0) > 0) mark('count written', at);
      }),
      new ConsulWatch(cluster.consulAddress, `/v1/kv/weft/allocs/${TARGET_NODE}/?recurse`, (body, at) => {
        if (kvValues<{ job?: string }>(body).some((e) => e.value?.job === job)) mark('allocation written', at);
      }),
      new ConsulWatch(cluster.consulAddress, `/v1/health/service/${job}`, (body, at) => {
        const entries = healthEntries(body);
        if (entries.length > 0) mark('registered', at);
        if (entries.some((e) => e.passing)) mark('passing', at);
      }),
    ];
    // Each watch's first answer is the state before the request (nothing): let them all have it.
    await new Promise((r) => setTimeout(r, 300));
    t0 = Date.now();
    const p0 = performance.now();
    const res = await through('/cold', 60_000).catch((err: Error) => ({ status: 0, headers: {} as http.IncomingHttpHeaders, body: err.message }));
    const cold = performance.now() - p0;
    stages.answered = Date.now() - t0;
    // The stage watches may trail the answer by a few ms.
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all(watches.map((w) => w.close()));
    const run: ColdRun = { direct, cold, status: res.status, coldHeader: res.headers['x-weft-cold-start'] === 'true', stages };
    out.push(run);
    log(
      `  cold start ${i + 1}/${runs}: through the mesh ${cold.toFixed(0)} ms (HTTP ${res.status}, x-weft-cold-start ${run.coldHeader}), direct start ${direct.toFixed(0)} ms, overhead ${(cold - direct).toFixed(0)} ms`,
    );
    log(`    stages (ms after the request left): ${COLD_STAGES.map((s) => `${s} ${stages[s] ?? '-'}`).join(', ')}`);
  }
  return out;
}

async function count(cluster: Cluster, job: string): Promise<number | undefined> {
  const res = await fetch(`${cluster.schedulerUrl}/v1/jobs/${job}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { spec?: { groups: Array<{ count?: number }> } };
  return body.spec?.groups[0]?.count ?? 1;
}

async function registered(cluster: Cluster, service: string): Promise<number> {
  const res = await fetch(`http://${cluster.consulAddress}/v1/health/service/${service}`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as unknown[]).length;
}

/** The agent tracks no more allocations than the host's documents name: nothing left to stop or remove. */
async function agentCaughtUp(cluster: Cluster): Promise<boolean> {
  if (cluster.agentMetricsUrl === undefined) return true;
  const docs = await fetch(`http://${cluster.consulAddress}/v1/kv/weft/allocs/${TARGET_NODE}/?keys`, { signal: AbortSignal.timeout(5000) });
  const documents = docs.status === 404 ? 0 : ((await docs.json()) as string[]).length;
  const text = await (await fetch(cluster.agentMetricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  let tracked = 0;
  for (const f of parseFamilies(text)) if (f.name === 'weft_agent_allocations') for (const m of f.metrics) tracked += Number(m.value);
  return tracked <= documents;
}

async function zeroMarked(cluster: Cluster, service: string): Promise<boolean> {
  const res = await fetch(`http://${cluster.consulAddress}/v1/kv/weft/zero/${service}`, { signal: AbortSignal.timeout(5000) });
  await res.body?.cancel();
  return res.status === 200;
}

/** Polls `fn` every 100 ms until true, at most `limitMs`. */
export async function until(fn: () => Promise<boolean>, limitMs: number, what: string): Promise<void> {
  const deadline = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A GET without keep-alive; `host` names the service for the outbound proxy. */
export function get(url: string, timeoutMs: number, host?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs, headers: host === undefined ? {} : { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}
