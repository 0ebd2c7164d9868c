/**
 * Turning the dev agent's ACLs on: Consul's `acl { ... }` block in a config
 * file (HCL or JSON), weft's --acl flags winning over it, warnings for keys it
 * does not honour and for a token file others can read, and `weft dev-consul
 * --acl --acl-default-policy deny --acl-bootstrap-token-file F` spawned for real.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveDevConsulConfig, type WeftDevConsulSettings } from '../../../discovery/dev-agent/index.js';
import type { TeardownHost } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';
import { aclCall } from '../../integration/acl-tokens.js';

const ROOT = join(import.meta.dirname, '../../..');
const WEFT: WeftDevConsulSettings = { nodeName: 'weft-host', datacenter: 'dc1', dataDir: '/var/lib/weft/dev-consul', bind: '127.0.0.1', port: 8500, fromFlags: {} };

async function dir(t: TeardownHost): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'weft-acl-config-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

t.test("Consul's acl block in HCL: enabled, default_policy, tokens.initial_management and tokens.default", async (t) => {
  const d = await dir(t);
  const f = join(d, 'acl.hcl');
  await writeFile(f, 'acl {\n  enabled = true\n  default_policy = "deny"\n  down_policy = "extend-cache"\n  tokens {\n    initial_management = "root"\n    default = "anon"\n    agent = "a"\n  }\n}\n', { mode: 0o600 });
  const plan = await resolveDevConsulConfig(['-config-file', f], WEFT);
  t.strictSame(plan.settings.acl, { enabled: true, defaultPolicy: 'deny', initialManagementToken: 'root', defaultToken: 'anon' });
  t.strictSame(plan.warnings, [`config file ${f}: ignored keys the dev agent does not honour: acl.down_policy, acl.tokens.agent`]);
});

t.test('files merge acl maps key by key; weft flags win; a token file others can read is named', async (t) => {
  const d = await dir(t);
  const a = join(d, 'a.json');
  const b = join(d, 'b.json');
  await writeFile(a, JSON.stringify({ acl: { enabled: true, tokens: { initial_management: 'root' } } }), { mode: 0o644 });
  await writeFile(b, JSON.stringify({ acl: { default_policy: 'allow', tokens: { default: 'anon' } } }), { mode: 0o600 });
  const merged = await resolveDevConsulConfig(['-config-file', a, '-config-file', b], WEFT);
  t.strictSame(merged.settings.acl, { enabled: true, defaultPolicy: 'allow', initialManagementToken: 'root', defaultToken: 'anon' });
  t.match(merged.warnings, [new RegExp(`config file ${a.replaceAll('.', '\\.')} holds ACL tokens and is readable by others \\(mode 0644\\); chmod 600 it`)]);

  const flagged = await resolveDevConsulConfig(['-config-file', b], { ...WEFT, acl: { enabled: true, defaultPolicy: 'deny', initialManagementToken: 'from-flag' } });
  t.strictSame(flagged.settings.acl, { enabled: true, defaultPolicy: 'deny', initialManagementToken: 'from-flag', defaultToken: 'anon' });

  const off = await resolveDevConsulConfig(['-config-file', b], WEFT);
  t.equal(off.settings.acl, undefined, 'not enabled anywhere: ACLs stay off');
  t.match(off.warnings, [/ACL settings given but acl\.enabled is not true/]);

  await writeFile(join(d, 'bad.json'), JSON.stringify({ acl: { enabled: true, default_policy: 'block' } }));
  await t.rejects(resolveDevConsulConfig(['-config-file', join(d, 'bad.json')], WEFT), { code: 'WEFT_ERR_DEV_CONSUL_CONFIG', message: /bad\.json: acl\.default_policy: / });
});

t.test('weft dev-consul --acl --acl-default-policy deny --acl-bootstrap-token-file F', async (t) => {
  const d = await dir(t);
  const tokenFile = join(d, 'root.token');
  await writeFile(tokenFile, 'c0ffee00-1111-4222-8333-444455556666\n', { mode: 0o600 });
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/weft.js'), 'dev-consul', '-dev', '--port', String(port), '--acl', '--acl-default-policy', 'deny', '--acl-bootstrap-token-file', tokenFile],
    { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const address = `127.0.0.1:${port}`;
  await eventually(async () => (await aclCall(address, 'GET', '/v1/status/leader')).status === 200, 20_000, `dev-consul to listen\n${out}`);
  t.equal((await aclCall(address, 'PUT', '/v1/kv/x', { body: 'v' })).status, 403, 'default deny without a token');
  t.equal((await aclCall(address, 'PUT', '/v1/kv/x', { body: 'v', token: 'c0ffee00-1111-4222-8333-444455556666' })).status, 200, 'the token from the file manages');
  t.equal((await aclCall(address, 'PUT', '/v1/acl/bootstrap')).status, 403, 'and counts as the bootstrap');
  t.notOk(out.includes('c0ffee00-1111-4222-8333-444455556666'), 'the token is in no log line');
  child.kill('SIGTERM');
  t.equal(await exited, 0, out.slice(-500));

  const bad = spawn(process.execPath, [join(ROOT, 'bin/weft.js'), 'dev-consul', '-dev', '--port', String(port), '--acl-default-policy', 'block'], { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
  let badOut = '';
  bad.stderr!.on('data', (b: Buffer) => (badOut += b.toString()));
  t.equal(await new Promise<number | null>((r) => bad.once('exit', (code) => r(code))), 2);
  t.match(badOut, /WEFT_ERR_ARGUMENT_INVALID: --acl-default-policy: must be allow or deny/);
});
