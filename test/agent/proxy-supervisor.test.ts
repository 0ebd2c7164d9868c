/**
 * The supervised proxy's own Consul token (agent.proxyConsulTokenFile).
 *
 * End to end: a REAL `weft agent` runs with its own Consul token and its host
 * token in its environment, under a dev Consul with ACLs on, default deny and
 * the shipped policies; it starts a REAL `weft proxy`, which registers itself
 * with the proxy's token, and whose environment holds that token and neither
 * of the agent's. A token rotated in the file applies at the proxy's next
 * start. A token file others may read stops the agent before it starts
 * anything, naming the file.
 *
 * The supervisor alone (with a small process reporting the token it got):
 * a token file that becomes unusable keeps the proxy down, never started
 * with the agent's token instead, until the file is fixed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ProxySupervisor } from '../../agent/proxy-supervisor.js';
import { isWeftError } from '../../base/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { HostAgent } from '../../src/wiring/agent-process.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { alive } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { aclCall, loadShippedPolicies, policyToken, shippedRules } from '../integration/acl-tokens.js';
import { captureLogger } from './helpers.js';

// A real agent and proxy, started and restarted, then more agents: more than the default 120 s on a busy 2-core machine.
t.setTimeout(240_000);
const BIN = new URL('../../bin/weft.js', import.meta.url).pathname;
const MANAGEMENT = '6c1f0a52-93d4-4e0b-8a3e-2f7d5b9c1e04';
// Other test files run at the same time on other 127.0.0.0/8 addresses.
const ADDRESS = '127.0.52.2';
const HOST = 'ps1';
const HOST_TOKEN = 'weft-host.ps1.not-a-real-mac-but-a-secret';


/** A process's environment, from /proc (readable by its user only). */
function environ(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = e.indexOf('=');
    if (eq > 0) m.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return m;
}

/** The supervised proxy's pid, from the agent's record. */
function proxyPid(dataDir: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(dataDir, 'agent', 'proxy.pid'), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-3000);
  } catch {
    return '(none)';
  }
}

/** Runs `weft agent` with a clean environment plus `env`, its output kept. */
function startAgent(env: NodeJS.ProcessEnv): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_') && !k.startsWith('CONSUL_')) clean[k] = v;
  const proc = spawn(process.execPath, [BIN, 'agent', '--driver', 'process', '--address', ADDRESS], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, output: () => out, exited };
}

t.test('weft agent hands its proxy the proxy token, never its own', async (t) => {
  t.setTimeout(120_000);
  const consul = await startTestConsul(t, { acl: { enabled: true, defaultPolicy: 'deny', initialManagementToken: MANAGEMENT } });
  const tokens = await loadShippedPolicies(consul.address, MANAGEMENT, [HOST]);
  const dir = mkdtempSync(join(tmpdir(), 'weft-proxy-token-'));
  const dataDir = join(dir, 'data');
  const tokenFile = join(dir, 'proxy-consul.token');
  writeFileSync(tokenFile, `${tokens.proxy}\n`, { mode: 0o600 });
  const configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    [
      `dataDir: ${dataDir}`,
      `nodeName: ${HOST}`,
      `consul: { address: "${consul.address}" }`,
      // A scheduler that is not there: the agent runs without one (no workloads here).
      `client: { address: "http://127.0.0.1:${await freePort()}" }`,
      'log: { format: json, level: info }',
      `agent: { proxyConsulTokenFile: ${tokenFile}, heartbeatTtlMs: 2000, metrics: { port: 0 } }`,
      `proxy: { inbound: { port: ${await freePort(ADDRESS)} }, metrics: { port: ${await freePort()} } }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  // The agent's own secrets are in its environment, where a child would inherit them.
  const agent = startAgent({ WEFT_CONFIG: configFile, CONSUL_HTTP_TOKEN: tokens.agents[HOST]!, WEFT_TOKEN: HOST_TOKEN });
  t.teardown(async () => {
    if (agent.proc.exitCode === null) {
      agent.proc.kill('SIGTERM');
      await Promise.race([agent.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    }
    // The agent leaves its proxy running by design (an agent restart never interrupts traffic).
    const pid = proxyPid(dataDir);
    if (pid !== undefined && alive(pid)) {
      process.kill(pid, 'SIGTERM');
      await eventually(() => !alive(pid), 15_000, 'the proxy stopped').catch(() => process.kill(pid, 'SIGKILL'));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const first = await eventually(() => proxyPid(dataDir), 30_000, `the agent starting its proxy\n${agent.output()}`, 100);
  const registered = await eventually(
    async () => {
      const r = await aclCall(consul.address, 'GET', '/v1/health/service/weft-proxy?passing=true', { token: MANAGEMENT });
      return Array.isArray(r.json) && r.json.length === 1 ? r.json : undefined;
    },
    30_000,
    `weft-proxy registered and passing\n${agent.output().slice(-3000)}\nproxy.log: ${tail(join(dataDir, 'agent', 'proxy.log'))}`,
    200,
  );
  t.match(registered, [{ Service: { Service: 'weft-proxy' } }], 'the proxy registered itself under default deny, with the token it was given');

  const env = environ(first);
  t.equal(env.get('CONSUL_HTTP_TOKEN'), tokens.proxy, "the proxy's CONSUL_HTTP_TOKEN is the proxy token");
  t.notOk(env.has('WEFT_TOKEN'), "the agent's host token (the scheduler API) is not in the proxy's environment");
  t.notOk([...env.values()].some((v) => v.includes(tokens.agents[HOST]!)), "the agent's Consul token is nowhere in the proxy's environment");
  t.match(agent.output(), /"msg":"weft proxy runs with its own Consul token \(agent.proxyConsulTokenFile\)"/, 'the agent says which token the proxy gets');
  t.notMatch(agent.output(), /runs with this agent's Consul token/, 'and does not warn about the agent token');
  for (const secret of [tokens.proxy, tokens.agents[HOST]!, HOST_TOKEN]) t.notOk(agent.output().includes(secret), 'no token in the agent log');

  await t.test('a token rotated in the file applies at the next start of the proxy', async (t) => {
    const rotated = await policyToken(consul.address, MANAGEMENT, 'weft-proxy-rotated', shippedRules('proxy'));
    writeFileSync(tokenFile, `${rotated}\n`, { mode: 0o600 });
    t.equal(environ(first).get('CONSUL_HTTP_TOKEN'), tokens.proxy, 'the running proxy keeps the token it started with');
    process.kill(first, 'SIGKILL');
    const second = await eventually(
      () => {
        const pid = proxyPid(dataDir);
        return pid !== undefined && pid !== first && alive(pid) ? pid : undefined;
      },
      20_000,
      `the proxy restarted\n${agent.output().slice(-2000)}`,
      100,
    );
    t.equal(environ(second).get('CONSUL_HTTP_TOKEN'), rotated, 'the restarted proxy has the new token');
  });
});

t.test("a token file others may read stops weft agent before it starts anything, naming the file", async (t) => {
  t.setTimeout(60_000);
  const consul = await startTestConsul(t);
  const dir = mkdtempSync(join(tmpdir(), 'weft-proxy-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'proxy.token');
  writeFileSync(tokenFile, '0e3c4b5a-1d2f-4e6a-9b8c-7d6e5f4a3b2c\n');
  chmodSync(tokenFile, 0o644);
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, `dataDir: ${join(dir, 'data')}\nnodeName: ${HOST}\nconsul: { address: "${consul.address}" }\nagent: { proxyConsulTokenFile: ${tokenFile} }\n`);
  const agent = startAgent({ WEFT_CONFIG: configFile });
  const code = await Promise.race([agent.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000).unref())]);
  if (code === 'late') agent.proc.kill('SIGKILL');
  t.not(code, 0, 'it exits with an error');
  t.not(code, 'late', 'at once');
  t.match(
    agent.output(),
    `weft: WEFT_ERR_CONFIG_INVALID: agent.proxyConsulTokenFile: ${tokenFile} has mode 644, which lets others read the token (chmod 600 ${tokenFile})`,
    'the coded error names the key, the file and the fix',
  );
  t.notOk(agent.output().includes('0e3c4b5a'), 'the token is not echoed');
  t.strictSame(await consul.consul.agent.service.list(), {}, 'nothing was registered');
  t.notOk(existsSync(join(dir, 'data', 'agent', 'proxy.pid')), 'no proxy was started');
});

t.test('token files: what is refused, and why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-proxy-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases: Array<[name: string, content: string | undefined, mode: number, expected: RegExp | string]> = [
    ['a token on the first line', '  9d2b7c1e-5f3a-4b8d-a6e0-1c2d3e4f5a6b  \nsecond line ignored\n', 0o600, '9d2b7c1e-5f3a-4b8d-a6e0-1c2d3e4f5a6b'],
    ['0400 is fine too', '9d2b7c1e-5f3a-4b8d-a6e0-1c2d3e4f5a6b', 0o400, '9d2b7c1e-5f3a-4b8d-a6e0-1c2d3e4f5a6b'],
    ['readable by the group', '9d2b7c1e-5f3a-4b8d-a6e0-1c2d3e4f5a6b', 0o640, /has mode 640, which lets others read the token \(chmod 600 /],
    ['readable by everyone', '9d2b7c1e-5f3a-4b8d-a6e0-1c2d3e4f5a6b', 0o644, /has mode 644/],
    ['empty', '\n', 0o600, /is empty: put the token on its first line/],
    ['too short to be a token', 'abc\n', 0o600, /holds 3 characters on its first line, too few for a token/],
    ['missing', undefined, 0o600, /cannot be read: ENOENT/],
  ];
  for (const [i, [name, content, mode, expected]] of cases.entries()) {
    const file = join(dir, `t${i}`);
    if (content !== undefined) {
      writeFileSync(file, content);
      chmodSync(file, mode);
    }
    if (typeof expected === 'string') {
      t.equal(ProxySupervisor.readConsulTokenFile(file, 'agent.proxyConsulTokenFile'), expected, name);
      continue;
    }
    try {
      ProxySupervisor.readConsulTokenFile(file, 'agent.proxyConsulTokenFile');
      t.fail(`${name}: accepted`);
    } catch (err) {
      t.ok(isWeftError(err, 'WEFT_ERR_CONFIG_INVALID'), `${name}: WEFT_ERR_CONFIG_INVALID`);
      t.match((err as Error).message, new RegExp(`^agent\\.proxyConsulTokenFile: ${file} `), `${name}: names the key and the file`);
      t.match((err as Error).message, expected, `${name}: says why`);
      t.match(err, { key: 'agent.proxyConsulTokenFile', value: file }, `${name}: key and value on the error`);
    }
  }
});

t.test('a token file that becomes unusable keeps the proxy down, never started with the agent token, until fixed', async (t) => {
  t.setTimeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'weft-proxy-token-'));
  const tokenFile = join(dir, 'proxy.token');
  const reported = join(dir, 'reported');
  writeFileSync(tokenFile, 'first-secret-aaaa\n', { mode: 0o600 });
  // Writes the token it got to `reported`, then stays up like a proxy.
  const script = "require('node:fs').appendFileSync(process.argv[1], (process.env.CONSUL_HTTP_TOKEN ?? '<none>') + '\\n'); setInterval(() => {}, 1000);";
  const { logger, lines } = captureLogger();
  const sup = new ProxySupervisor({
    command: [process.execPath, '-e', script, reported],
    env: { ...process.env, CONSUL_HTTP_TOKEN: 'agent-token-bbbbbbbb' },
    consulToken: { file: tokenFile, key: 'agent.proxyConsulTokenFile' },
    stateDir: join(dir, 'agent'),
    logger,
    pollMs: 20,
    backoffBaseMs: 40,
    backoffMaxMs: 80,
  });
  t.teardown(() => {
    const pid = sup.pid;
    sup.stop({ stopProxy: true });
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const reports = (): string[] => (existsSync(reported) ? readFileSync(reported, 'utf8').trim().split('\n') : []);

  sup.start();
  await eventually(() => reports().length === 1, 10_000, 'the first start');
  t.strictSame(reports(), ['first-secret-aaaa'], 'started with the token from the file');

  chmodSync(tokenFile, 0o644);
  process.kill(sup.pid!, 'SIGKILL');
  await eventually(() => lines.filter((l) => l['msg'] === 'could not start weft proxy: its Consul token file is unusable; retrying with backoff').length >= 2, 10_000, 'refused starts');
  t.equal(sup.pid, undefined, 'no proxy runs');
  t.strictSame(reports(), ['first-secret-aaaa'], 'nothing was started meanwhile, with the agent token or any other');
  const refusal = lines.find((l) => String(l['msg']).startsWith('could not start weft proxy'))!;
  t.match((refusal['err'] as { message: string }).message, `agent.proxyConsulTokenFile: ${tokenFile} has mode 644`, 'the log says why, naming the file');

  writeFileSync(tokenFile, 'second-secret-cccc\n');
  chmodSync(tokenFile, 0o600);
  await eventually(() => reports().length === 2, 10_000, 'a start once the file is fixed');
  t.strictSame(reports(), ['first-secret-aaaa', 'second-secret-cccc'], 'started again with the token now in the file');
  t.notOk(JSON.stringify(lines).includes('-secret-'), 'no token in the log');
});

t.test("without a token file, an agent with a Consul token says once that its proxy runs with the agent's token", async (t) => {
  const consul = await startTestConsul(t);
  const dir = mkdtempSync(join(tmpdir(), 'weft-proxy-token-'));
  const { logger, lines } = captureLogger();
  const config = loadConfig({
    env: {},
    flags: { dataDir: dir, nodeName: 'ps2', 'consul.address': consul.address, 'consul.token': '2f4e6a8c-0b1d-4f3e-9a7c-5e4d3c2b1a09', 'agent.driver': 'process', 'agent.metrics.port': 0 },
  });
  // The supervision contract does not depend on what the process is.
  const agent = await HostAgent.start({ config, logger, proxyCommand: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], signer: null, watchWaitMs: 1000 });
  t.teardown(async () => {
    agent.proxy?.stop({ stopProxy: true });
    await agent.close({ deregisterNode: true });
    rmSync(dir, { recursive: true, force: true });
  });
  const said = lines.filter((l) => String(l['msg']).includes("weft proxy runs with this agent's Consul token"));
  t.equal(said.length, 1, 'once');
  t.equal(said[0]!['level'], 40, 'as a warning');
  t.match(said[0]!['msg'], /set agent\.proxyConsulTokenFile to give it its own/, 'and how to give the proxy its own');
  t.notOk(JSON.stringify(lines).includes('2f4e6a8c'), 'no token in the log');
});
