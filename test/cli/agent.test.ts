/**
 * The `weft agent` command itself, as an operator runs it (a child process:
 * `node bin/weft.js agent --driver process ...`), against the dev Consul
 * agent: weft-agent registered with the capacity and attributes of the flags,
 * the heartbeat passing past its TTL, an allocation run; SIGTERM stops the
 * agent only (the workload and its registration stay, and the next agent
 * adopts them); `--leave` also deregisters the host; a bad flag value exits 2
 * with the coded error naming the flag.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ProcessDriver } from '../../agent/drivers/process.js';
import { type AllocStatus, allocKey, allocStatusKey } from '../../base/contracts/alloc.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { testSigner } from '../helpers/signing.js';
import { weft } from './run-weft.js';

const ROOT = join(import.meta.dirname, '..', '..');
const HOST = `cli-agent-${process.pid}`;
const DEMO_APP = join(ROOT, 'scripts', 'demo-app.mjs');

/** Environment without the caller's WEFT_* and CONSUL_HTTP_ADDR, as run-weft.ts does. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_') && k !== 'CONSUL_HTTP_ADDR') env[k] = v;
  return env;
}

t.test('weft agent --driver process', async (t) => {
  const consul = await startTestConsul(t);
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-cli-agent-'));
  // The agent leaves its processes running on purpose: the test removes them.
  t.teardown(async () => {
    const driver = new ProcessDriver(join(dataDir, 'agent', 'processes'));
    for (const task of await driver.list({ all: true })) await driver.remove(task.id, { force: true });
    await driver.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const configFile = join(dataDir, 'config.yaml');
  await writeFile(configFile, 'agent:\n  heartbeatTtlMs: 1000\n  drainDelayMs: 100\n');
  // The scheduler's signing keys on this machine (no host token): the agent runs only what they signed.
  const signer = await testSigner(t);
  await signer.installFor(dataDir);

  /** Starts `weft agent`; resolves once it logs that it runs (signal handlers installed) and weft-agent is in Consul. */
  async function startAgent(extra: string[] = []): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
    // biome-ignore format: one flag and its value per line
    const args = [
      join(ROOT, 'bin', 'weft.js'), 'agent',
      '--driver', 'process',
      '--config', configFile,
      '--data-dir', dataDir,
      '--node', HOST,
      '--consul', consul.address,
      '--cpu', '1500',
      '--memory', '2048',
      '--attr', 'zone=a',
      '--attr', 'rack=r1',
      '--no-proxy',
      '--log-format', 'json',
      ...extra,
    ];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`weft agent exited ${child.exitCode}: ${out}`);
        return out.includes('"msg":"weft agent running"') && (await agentService()) !== undefined ? true : undefined;
      },
      30_000,
      'weft-agent registered',
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${out}`);
    });
    return { child, output: () => out, exited };
  }
  async function agentService(): Promise<{ Service: string; Meta: Record<string, string> } | undefined> {
    const all = (await consul.consul.agent.service.list()) as Record<string, { Service: string; Meta: Record<string, string> }>;
    return all[`weft-agent-${HOST}`];
  }
  async function heartbeat(): Promise<string | undefined> {
    const checks = (await consul.consul.agent.check.list()) as Record<string, { ServiceID: string; Status: string }>;
    return Object.values(checks).find((c) => c.ServiceID === `weft-agent-${HOST}`)?.Status;
  }
  async function status(id: string): Promise<AllocStatus | undefined> {
    const row = (await consul.consul.kv.get(allocStatusKey(HOST, id))) as { Value: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.Value) as AllocStatus);
  }
  async function stopAgent(a: { child: ChildProcess; exited: Promise<number | null> }): Promise<number | null> {
    a.child.kill('SIGTERM');
    const timer = setTimeout(() => a.child.kill('SIGKILL'), 10_000);
    const code = await a.exited;
    clearTimeout(timer);
    return code;
  }

  const port = await freePort();
  let agent = await startAgent();

  t.test('weft-agent carries the capacity and attributes of the flags; the heartbeat passes past its TTL', async (t) => {
    t.match(await agentService(), { Service: 'weft-agent', Meta: { weft_host: HOST, weft_cpu: '1500', weft_memory: '2048', weft_driver: 'process', weft_attr_zone: 'a', weft_attr_rack: 'r1' } });
    await new Promise((r) => setTimeout(r, 1500)); // longer than the 1 s TTL: only beats keep it passing
    t.equal(await heartbeat(), 'passing');
  });

  t.test('an allocation runs; SIGTERM stops the agent, not the process or its registration', async (t) => {
    const doc = {
      id: 'p1',
      job: 'shop',
      group: 'api',
      task: 'server',
      driver: 'process',
      command: process.execPath,
      args: [DEMO_APP],
      env: {},
      port,
      resources: { cpu: 100, memory: 64 },
      labels: { 'weft.service': 'cli-shop', 'weft.check.http': '/health', 'weft.check.interval': '1s', 'weft.check.timeout': '500ms' },
      restart: { attempts: 0, interval: 60_000, delay: 100, mode: 'fail' },
    };
    await signer.put(consul.consul, allocKey(HOST, 'p1'), doc);
    const running = await eventually(async () => ((await status('p1'))?.state === 'running' ? status('p1') : undefined), 15_000, 'allocation running', 50);
    await eventually(async () => ((await consul.consul.health.service({ service: 'cli-shop', passing: true })) as unknown[])[0], 5000, 'passing', 50);

    t.equal(await stopAgent(agent), 0, 'the agent exits 0 on SIGTERM');
    t.match(agent.output(), /stopping the agent; workloads and the proxy keep running/);
    t.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200, 'the process still serves');
    t.equal(((await consul.consul.health.service({ service: 'cli-shop', passing: true })) as unknown[]).length, 1, 'its registration stays');
    t.ok(await agentService(), 'without --leave, weft-agent stays (its heartbeat lapses after the TTL)');

    agent = await startAgent(['--leave']);
    t.match(agent.output(), /adopted a running allocation/, 'the next agent adopts the process');
    t.notMatch(agent.output(), /allocation started/, 'without starting another');
    const adopted = await status('p1');
    t.equal(adopted?.containerId, running.containerId, 'the same task');
    t.equal(adopted?.restarts, running.restarts, 'not restarted');
  });

  t.test('--leave: SIGTERM deregisters weft-agent; the process keeps running', async (t) => {
    t.equal(await stopAgent(agent), 0);
    t.equal(await agentService(), undefined, 'weft-agent deregistered');
    t.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200, 'the process still serves');
  });
});

t.test('a bad flag value exits 2 with the coded error naming the flag', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--cpu', 'lots'], /WEFT_ERR_CONFIG_INVALID: agent\.cpu: must be integer \(got "lots" from flag --cpu\)/],
    [['--memory', '-5'], /WEFT_ERR_CONFIG_INVALID: agent\.memory: .*from flag --memory/],
    [['--attr', 'zone'], /WEFT_ERR_CONFIG_INVALID: --attr: must be key=value \(got "zone"\)/],
    [['--driver', 'podman'], /WEFT_ERR_CONFIG_INVALID: agent\.driver: must be one of auto, docker, process \(got "podman" from flag --driver\)/],
  ];
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-cli-agent-bad-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  for (const [flags, message] of cases) {
    const r = await weft(['agent', '--data-dir', dataDir, '--no-proxy', ...flags], { timeoutMs: 30_000 });
    t.equal(r.code, 2, `${flags.join(' ')}: exit 2`);
    t.match(r.stderr, message, `${flags.join(' ')}: names the flag`);
  }
});
