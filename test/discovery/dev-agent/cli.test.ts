/** `weft dev-consul` end to end: start the real CLI, talk to it with the `consul` client, stop it with SIGTERM. */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { freePort } from '../../helpers/ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Consul from 'consul';
import t from 'tap';
import { startDevConsul } from '../../../discovery/dev-agent/index.js';
import { eventually } from '../../helpers/eventually.js';

t.test('startDevConsul is ready well under 2 s', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const started = performance.now();
  const agent = await startDevConsul({ bind: '127.0.0.1', port: 0, dataDir: dir, nodeName: 'n1', datacenter: 'dc1' });
  const took = performance.now() - started;
  t.teardown(() => agent.close());
  t.comment(`in-process startup: ${took.toFixed(1)} ms`);
  t.ok(took < 2000, `started in ${Math.round(took)} ms`);
  t.match(agent.address, /^127\.0\.0\.1:\d+$/);
});

t.test('weft dev-consul serves the API and persists on SIGTERM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['bin/weft.js', 'dev-consul', '--port', String(port), '--data-dir', dir, '--node', 'cli-node', '--log-format', 'json'], {
    cwd: join(import.meta.dirname, '../../..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const consul = new Consul({ host: '127.0.0.1', port });
  t.teardown(() => consul.destroy());
  await eventually(() => consul.status.leader().catch(() => undefined), 15_000, 'the CLI to listen');
  const ready = performance.now() - started;
  t.comment(`weft dev-consul ready after ${ready.toFixed(0)} ms (process start, tsx, load, listen)`);

  t.equal(await consul.kv.set('weft/cli', 'yes'), true);
  t.match(await consul.agent.self(), { Config: { NodeName: 'cli-node', Datacenter: 'dc1' } });
  child.kill('SIGTERM');
  t.equal(await exited, 0, `clean exit${stderr ? `: ${stderr}` : ''}`);
  const snap = await readFile(join(dir, 'dev-consul', 'state.json'), 'utf8');
  t.match(snap, /"key":"weft\/cli"/, 'state written under <data-dir>/dev-consul');
});
