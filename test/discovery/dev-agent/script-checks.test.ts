/**
 * Script checks, with real processes: off by default (Consul's refusal and
 * how to enable), enable_script_checks / enable_local_script_checks, exit
 * codes 0/1/other, captured and capped output, and the timeout, which kills
 * the script's whole process group.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { probeScript } from '../../../discovery/dev-agent/checks/script.js';
import { startDevConsul } from '../../../discovery/dev-agent/index.js';
import { startTestConsul, type TestConsul } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';

interface Check {
  Status: string;
  Output: string;
  Type: string;
  Interval: string;
  Timeout: string;
}

const REMOTE_REFUSAL = "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true";

async function put(c: TestConsul, path: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://${c.address}${path}`, { method: 'PUT', body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

async function checkOf(c: TestConsul, id: string): Promise<Check | undefined> {
  return ((await c.consul.agent.checks()) as Record<string, Check>)[id];
}

async function statusBecomes(c: TestConsul, id: string, status: string, timeoutMs = 5000): Promise<Check> {
  return eventually(
    async () => {
      const ch = await checkOf(c, id);
      return ch?.Status === status ? ch : undefined;
    },
    timeoutMs,
    `${id} to be ${status}`,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('script checks are refused by default, with Consul message and status', async (t) => {
  const c = await startTestConsul(t);
  const check = await put(c, '/v1/agent/check/register', { Name: 'disk', Args: ['sh', '-c', 'exit 0'], Interval: '1s' });
  t.equal(check.status, 500, 'Consul answers 500: the refusal comes from behind its HTTP layer');
  t.equal(check.text, REMOTE_REFUSAL);
  const script = await put(c, '/v1/agent/check/register', { Name: 'disk', Script: 'exit 0', Interval: '1s' });
  t.equal(script.text, REMOTE_REFUSAL, 'the older Script form too');
  const service = await put(c, '/v1/agent/service/register', { Name: 'web', Check: { Args: ['true'], Interval: '1s' } });
  t.equal(service.status, 500);
  t.equal(service.text, REMOTE_REFUSAL);
  t.same(await c.consul.agent.service.list(), {}, 'nothing was registered');
  t.equal(await checkOf(c, 'disk'), undefined);
  // Through the consul client: a 500, as from a real agent.
  await t.rejects(c.consul.agent.check.register({ name: 'x', args: ['true'], interval: '1s' } as never), { message: /./, statusCode: 500 });
});

t.test('enable_local_script_checks alone does not let the HTTP API register scripts (Consul: API calls are remote)', async (t) => {
  const c = await startTestConsul(t, { enableLocalScriptChecks: true });
  const res = await put(c, '/v1/agent/check/register', { Name: 'disk', Args: ['true'], Interval: '1s' });
  t.equal(res.status, 500);
  t.equal(res.text, REMOTE_REFUSAL);
});

t.test('a script check is validated like any interval check before the policy is consulted', async (t) => {
  const c = await startTestConsul(t);
  const res = await put(c, '/v1/agent/check/register', { Name: 'disk', Args: ['true'] });
  t.equal(res.status, 400);
  t.match(res.text, /Interval must be > 0 for Script/);
  const bad = await put(c, '/v1/agent/check/register', { Name: 'disk', Args: 'true', Interval: '1s' });
  t.equal(bad.status, 400);
  t.match(bad.text, /Args must be a list of strings/);
});

t.test('enabled: exit 0 passing, 1 warning, anything else critical, output captured', async (t) => {
  const c = await startTestConsul(t, { enableScriptChecks: true });
  const cases: Array<[id: string, body: Record<string, unknown>, status: string, output: string]> = [
    ['pass', { Args: ['sh', '-c', 'echo all good; exit 0'] }, 'passing', 'all good\n'],
    ['warn', { Args: ['sh', '-c', 'echo disk 91% >&2; exit 1'] }, 'warning', 'disk 91%\n'],
    ['fail', { Args: ['sh', '-c', 'echo down; exit 2'] }, 'critical', 'down\n'],
    ['script', { Script: 'echo via shell; exit 1' }, 'warning', 'via shell\n'],
    ['missing', { Args: ['/nonexistent/check-disk'] }, 'critical', 'fork/exec /nonexistent/check-disk: no such file or directory'],
  ];
  for (const [id, body, status] of cases) {
    const res = await put(c, '/v1/agent/check/register', {
      ID: id,
      Name: id,
      Interval: '100ms',
      // Start where the script must move it from, so the status seen is the script's own.
      Status: status === 'critical' ? 'passing' : 'critical',
      ...body,
    });
    t.equal(res.status, 200, `${id} registered: ${res.text}`);
  }
  for (const [id, , status, output] of cases) {
    const ch = await statusBecomes(c, id, status);
    t.equal(ch.Output, output, `${id}: output`);
    t.equal(ch.Type, 'script', `${id}: type`);
  }
  t.equal((await checkOf(c, 'pass'))?.Timeout, '30s', "Consul's default script timeout");

  // A service's check from /v1/agent/service/register runs the same way (node checks count in health: drop them first).
  for (const [id] of cases) await c.consul.agent.check.deregister(id);
  t.equal((await put(c, '/v1/agent/service/register', { Name: 'web', Port: 80, Check: { Args: ['true'], Interval: '100ms' } })).status, 200);
  await statusBecomes(c, 'service:web', 'passing');
  const health = (await c.consul.health.service({ service: 'web', passing: true })) as unknown[];
  t.equal(health.length, 1, 'the service is healthy through its script check');
});

t.test('the timeout kills the whole process group and reports Consul text', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-script-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'grandchild.pid');
  const c = await startTestConsul(t, { enableScriptChecks: true });
  // The script starts a grandchild in its group and waits on it: only a group kill stops both.
  const res = await put(c, '/v1/agent/check/register', {
    ID: 'slow',
    Name: 'slow',
    Args: ['sh', '-c', `echo started; sleep 30 & echo $! > ${pidFile}; wait`],
    Interval: '10s',
    Timeout: '300ms',
    Status: 'passing',
  });
  t.equal(res.status, 200, res.text);
  const ch = await statusBecomes(c, 'slow', 'critical', 15_000);
  t.equal(ch.Output, 'Timed out (300ms) running check\n\nstarted\n');
  const grandchild = Number((await readFile(pidFile, 'utf8')).trim());
  await eventually(() => !alive(grandchild), 3000, 'the grandchild to be killed');
  t.pass(`grandchild ${grandchild} was killed with the group`);
});

t.test('probeScript: output keeps the last 4 KiB and says how much there was, as Consul does', async (t) => {
  const r = await probeScript({ run: { args: ['sh', '-c', 'head -c 5000 /dev/zero | tr "\\0" a; printf END'] }, timeoutMs: 10_000 });
  t.equal(r.status, 'passing');
  t.match(r.output, /^Captured 4096 of 5003 bytes\n\.\.\.\na+END$/);
  t.equal(r.output.length, 'Captured 4096 of 5003 bytes\n...\n'.length + 4096);
  const small = await probeScript({ run: { args: ['sh', '-c', 'printf 0123456789'] }, timeoutMs: 10_000, outputMaxSize: 4 });
  t.equal(small.output, 'Captured 4 of 10 bytes\n...\n6789', 'OutputMaxSize lowers the cap');
});

t.test('probeScript: a signal is critical, a PATH miss reads like Go, and abort kills the script', async (t) => {
  t.match(await probeScript({ run: { args: ['sh', '-c', 'kill -9 $$'] }, timeoutMs: 10_000 }), { status: 'critical' });
  t.match(await probeScript({ run: { args: ['weft-no-such-check'] }, timeoutMs: 10_000 }), {
    status: 'critical',
    output: 'exec: "weft-no-such-check": executable file not found in $PATH',
  });
  const abort = new AbortController();
  const running = probeScript({ run: { command: 'sleep 30' }, timeoutMs: 60_000, signal: abort.signal });
  abort.abort();
  t.match(await running, { status: 'critical', output: 'check stopped' });
});

t.test('a persisted API script check is dropped when script checks are no longer enabled (Consul purges it)', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-script-state-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const base = { bind: '127.0.0.1', port: 0, dataDir, nodeName: 'n1', datacenter: 'dc1', checkIntervalMin: 10 };
  const first = await startDevConsul({ ...base, enableScriptChecks: true });
  const res = await fetch(`http://${first.address}/v1/agent/check/register`, {
    method: 'PUT',
    body: JSON.stringify({ ID: 'disk', Name: 'disk', Args: ['true'], Interval: '1s' }),
  });
  t.equal(res.status, 200);
  await first.close();
  const second = await startDevConsul(base);
  t.teardown(() => second.close());
  const checks = (await (await fetch(`http://${second.address}/v1/agent/checks`)).json()) as Record<string, unknown>;
  t.notOk('disk' in checks, 'the check is gone');
});
