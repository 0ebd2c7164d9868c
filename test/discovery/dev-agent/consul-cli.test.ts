/**
 * `weft dev-consul` with Consul's agent flags and config files, spawned for
 * real as `consul agent` would be: services and checks from a JSON file,
 * -node/-datacenter/-client/-http-port/-data-dir/-dev/-pid-file taking effect,
 * unhonoured flags named in a warning, reload, and exit 2 on a bad file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Consul from 'consul';
import t from 'tap';
import type { TeardownHost } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';

const ROOT = join(import.meta.dirname, '../../..');

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function weft(t: TeardownHost, args: string[], cwd = ROOT): Run {
  const child = spawn(process.execPath, [join(ROOT, 'bin/weft.js'), 'dev-consul', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out, exited };
}

async function tempDir(t: TeardownHost): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'weft-consul-cli-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function ready(t: TeardownHost, run: Run, port: number): Promise<Consul> {
  const consul = new Consul({ host: '127.0.0.1', port });
  t.teardown(() => consul.destroy());
  await eventually(() => consul.status.leader().catch(() => undefined), 20_000, `the agent on :${port} (output so far: ${run.output()})`);
  return consul;
}

t.test('-config-file with Consul flags: the file registers, the flags take effect, reload re-reads it', async (t) => {
  const d = await tempDir(t);
  const dataDir = join(d, 'state');
  const config = join(d, 'web.json');
  await writeFile(
    config,
    JSON.stringify({
      node_name: 'from-the-file',
      enable_local_script_checks: true,
      service: { name: 'web', port: 8080, tags: ['v1'], check: { args: ['sh', '-c', 'echo web ok'], interval: '1s' } },
      checks: [{ id: 'disk', name: 'disk', args: ['sh', '-c', 'exit 1'], interval: '1s' }],
      ui_config: { enabled: true },
    }),
  );
  const port = await freePort();
  const run = weft(t, [
    '-config-file',
    config,
    '-node',
    'cli-node',
    '-datacenter=dc9',
    '-client',
    '127.0.0.1',
    '-http-port',
    String(port),
    '-data-dir',
    dataDir,
    '-retry-join',
    '10.0.0.9',
    '-server',
    '-bootstrap-expect=1',
    '--log-format',
    'json',
  ]);
  const consul = await ready(t, run, port);

  t.match(await consul.agent.self(), { Config: { NodeName: 'cli-node', Datacenter: 'dc9' } }, '-node beats node_name in the file, -datacenter applies');
  const services = (await consul.catalog.service.nodes('web')) as Array<{ ServicePort: number; ServiceTags: string[]; Node: string }>;
  t.match(services, [{ ServicePort: 8080, ServiceTags: ['v1'], Node: 'cli-node' }], 'the file service is in the catalog');
  const checks = await eventually(async () => {
    const all = (await consul.agent.checks()) as Record<string, { Status: string; Output: string }>;
    return all['service:web']?.Status === 'passing' && all['disk']?.Status === 'warning' ? all : undefined;
  }, 10_000, 'the file script checks to run');
  t.equal(checks['service:web']?.Output, 'web ok\n');

  const out = run.output();
  t.match(out, /ignored Consul flags the dev agent cannot honour[^"]*-retry-join/, 'the unhonoured flag is named in a warning');
  t.match(out, /ignored keys the dev agent does not honour: ui_config/);
  t.notMatch(out, /-server|-bootstrap-expect/, 'the accepted no-op flags raise no warning');

  // Script checks over the API stay refused: the file enabled local ones only.
  const api = await fetch(`http://127.0.0.1:${port}/v1/agent/check/register`, { method: 'PUT', body: JSON.stringify({ Name: 'x', Args: ['true'], Interval: '1s' }) });
  t.equal(api.status, 500);
  t.match(await api.text(), /from remote calls; to enable, configure 'enable_script_checks' to true/);

  // Reload: the file now defines another service; "web" leaves with its check.
  await writeFile(config, JSON.stringify({ services: [{ name: 'api', port: 9090 }] }));
  t.equal((await fetch(`http://127.0.0.1:${port}/v1/agent/reload`, { method: 'PUT' })).status, 200);
  t.strictSame(Object.keys(await consul.agent.service.list()), ['api']);
  t.strictSame(Object.keys((await consul.agent.checks()) as object), []);

  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, `clean exit: ${run.output().slice(-500)}`);
  t.match(await readFile(join(dataDir, 'state.json'), 'utf8'), /"name":"api"/, '-data-dir is the state directory itself');
});

t.test('-dev keeps state in a temporary directory removed at exit; -pid-file; -enable-script-checks lets the API register scripts', async (t) => {
  const cwd = await tempDir(t);
  const port = await freePort();
  const pidFile = join(cwd, 'consul.pid');
  const run = weft(t, ['-dev', '-http-port', String(port), '-pid-file', pidFile, '-enable-script-checks', '--log-format', 'json'], cwd);
  const consul = await ready(t, run, port);
  t.equal((await readFile(pidFile, 'utf8')).trim(), String(run.child.pid), 'the pid file holds the agent pid');
  const tempState = /"dataDir":"([^"]+) \(-dev: removed at exit\)"/.exec(run.output())?.[1];
  t.ok(tempState !== undefined && existsSync(tempState), `state goes to a temporary directory (${tempState})`);

  const res = await fetch(`http://127.0.0.1:${port}/v1/agent/check/register`, {
    method: 'PUT',
    body: JSON.stringify({ ID: 'api-script', Name: 'api-script', Args: ['sh', '-c', 'echo from the api'], Interval: '1s' }),
  });
  t.equal(res.status, 200, await res.text());
  await eventually(async () => ((await consul.agent.checks()) as Record<string, { Status: string }>)['api-script']?.Status === 'passing', 10_000, 'the API script check to pass');

  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, run.output().slice(-500));
  t.notOk(existsSync(tempState!), 'the temporary state directory is gone');
  t.notOk(existsSync(join(cwd, '.weft')), "weft's default data directory was not used");
  t.notOk(existsSync(pidFile), 'the pid file is removed at exit');
});

t.test('a bad acl.default_policy and a key of the wrong type exit 2, naming the file and the key', async (t) => {
  const d = await tempDir(t);
  const acl = join(d, 'acl.hcl');
  await writeFile(acl, 'acl {\n  enabled = true\n  default_policy = "block"\n}\n');
  const typed = join(d, 'ports.json');
  await writeFile(typed, JSON.stringify({ ports: { http: '8500' } }));
  for (const [file, key] of [
    [acl, 'acl.default_policy'],
    [typed, 'ports.http'],
  ] as const) {
    const run = weft(t, ['-dev', '-config-file', file]);
    t.equal(await run.exited, 2, file);
    t.match(run.output(), new RegExp(`weft: WEFT_ERR_DEV_CONSUL_CONFIG: config file ${file.replaceAll('.', '\\.')}: ${key.replace('.', '\\.')}: `));
  }
});
