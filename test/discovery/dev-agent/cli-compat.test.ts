/** `weft dev-consul` end to end: --node-meta sets the node's Meta, and PUT /v1/agent/leave makes the process exit 0. */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Consul from 'consul';
import t from 'tap';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';

const ROOT = join(import.meta.dirname, '../../..');

function weft(args: string[]) {
  const child = spawn(process.execPath, ['bin/weft.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, stderr: () => stderr };
}

t.test('--node-meta sets the Meta and PUT /v1/agent/leave exits 0 after answering', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const run = weft(['dev-consul', '--port', String(port), '--data-dir', dir, '--node', 'meta-node', '--node-meta', 'rack:r1', '--node-meta', 'url:http://x', '--log-format', 'json']);
  t.teardown(() => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
  });
  const consul = new Consul({ host: '127.0.0.1', port });
  t.teardown(() => consul.destroy());
  await eventually(() => consul.status.leader().catch(() => undefined), 15_000, 'the CLI to listen');

  const self = (await consul.agent.self()) as { Meta: Record<string, string> };
  t.strictSame(self.Meta, { rack: 'r1', url: 'http://x', 'consul-network-segment': '' }, 'split at the first colon');
  const filtered = (await consul.catalog.node.list({ 'node-meta': ['rack:r1'] } as never)) as Array<{ Node: string }>;
  t.strictSame(
    filtered.map((n) => n.Node),
    ['meta-node'],
  );
  t.equal(await consul.kv.set('weft/left', 'yes'), true);

  const res = await fetch(`http://127.0.0.1:${port}/v1/agent/leave`, { method: 'PUT' });
  t.equal(res.status, 200, 'the leave is answered before the agent goes');
  t.equal(await run.exited, 0, `clean exit${run.stderr() ? `: ${run.stderr()}` : ''}`);
  t.match(await readFile(join(dir, 'dev-consul', 'state.json'), 'utf8'), /"key":"weft\/left"/, 'state persisted on the way out');
});

t.test('--node-meta that Consul would refuse stops the command with a coded error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const bad of ['consul-version:1', ':novalue', 'bad key:x']) {
    const run = weft(['dev-consul', '--port', '0', '--data-dir', dir, '--node-meta', bad]);
    t.teardown(() => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    });
    t.equal(await run.exited, 2, `${bad}: exit 2`);
    t.match(run.stderr(), /weft: WEFT_ERR_CONFIG_INVALID: /);
  }
});
