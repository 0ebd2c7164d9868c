/**
 * `weft ca ...` and `weft cert ...` as an operator runs them. Most cases drive
 * the commands in-process (fast); one smoke test runs the real binary.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import t from 'tap';
import { readBundle } from '../../certs/bundle-kv.js';
import { spiffeIdOf } from '../../certs/verify.js';
import { registerCaCommands } from '../../src/cli/ca.js';
import { GLOBAL_FLAGS } from '../../src/cli/flags.js';
import { isWeftError } from '../../base/errors.js';
import { startTestConsul } from '../helpers/dev-consul.js';

const BIN = fileURLToPath(new URL('../../bin/weft.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const outputs: string[] = [];

/** Runs the commands in-process; exit code 2 and `weft: CODE: message` on a WeftError, as the real CLI prints. */
async function weft(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command('weft').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => err.push(s) });
  for (const [flag, , description] of GLOBAL_FLAGS) program.addOption(new Option(flag, description));
  registerCaCommands(program, { out: (l) => out.push(l + '\n'), warn: (l) => err.push(l + '\n') });
  let code = 0;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!isWeftError(e)) throw e;
    err.push(`weft: ${e.code}: ${e.message}\n`);
    code = 2;
  }
  const run = { code, stdout: out.join(''), stderr: err.join('') };
  outputs.push(run.stdout, run.stderr);
  return run;
}

/** Runs the real binary. */
function weftBinary(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, WEFT_LOG_FORMAT: 'json' };
  for (const k of ['CONSUL_HTTP_ADDR', 'WEFT_CONFIG', 'WEFT_DATA_DIR']) delete env[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      outputs.push(stdout, stderr);
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('ca init, cert issue, cert inspect, ca rotate, ca publish against a dev Consul', async (t) => {
  const c = await startTestConsul(t);
  const data = tempDir(t);
  const base = ['--data-dir', data, '--consul', c.address];

  const init = await weft([...base, 'ca', 'init', '--trust-domain', 'cli.test']);
  t.equal(init.code, 0, init.stderr);
  t.match(init.stdout, /created CA for trust domain cli\.test/);
  t.match(init.stdout, /published the trust bundle \(1 root\) to Consul KV weft\/ca\/roots/);
  t.equal((await readBundle(c.consul))?.trustDomain, 'cli.test', 'bundle is in KV');
  t.equal((statSync(join(data, 'ca')).mode & 0o777).toString(8), '700');

  const again = await weft([...base, 'ca', 'init']);
  t.equal(again.code, 2);
  t.match(again.stderr, /WEFT_ERR_CA_EXISTS/);

  const out = join(data, 'web');
  const issue = await weft([...base, 'cert', 'issue', '--service', 'web', '--out', out]);
  t.equal(issue.code, 0, issue.stderr);
  t.match(issue.stdout, /issued spiffe:\/\/cli\.test\/ns\/default\/svc\/web, valid until/);
  t.equal((statSync(join(out, 'key.pem')).mode & 0o777).toString(8), '600', 'key.pem is 0600');
  const cert = new X509Certificate(readFileSync(join(out, 'cert.pem')));
  t.equal(spiffeIdOf(cert).uri, 'spiffe://cli.test/ns/default/svc/web');
  t.match(readFileSync(join(out, 'bundle.pem'), 'utf8'), /BEGIN CERTIFICATE/);

  const inspect = await weft(['cert', 'inspect', join(out, 'cert.pem')]);
  t.equal(inspect.code, 0, inspect.stderr);
  t.match(inspect.stdout, /SPIFFE ID: +spiffe:\/\/cli\.test\/ns\/default\/svc\/web/);
  t.match(inspect.stdout, /SANs: +URI:spiffe:\/\/cli\.test\/ns\/default\/svc\/web, DNS:web/);
  t.match(inspect.stdout, /issuer: +O=weft, OU=cli\.test, CN=weft root /);
  t.match(inspect.stdout, /validity: .* \(valid\)/);
  t.match(inspect.stdout, new RegExp(`fingerprint: +SHA256 ${cert.fingerprint256}`));
  const json = JSON.parse((await weft(['cert', 'inspect', '--json', join(out, 'cert.pem')])).stdout) as Record<string, unknown>;
  t.match(json, { spiffeId: 'spiffe://cli.test/ns/default/svc/web', sha256Fingerprint: cert.fingerprint256, keyType: 'ec-p256', ca: false, keyUsage: ['digitalSignature'], extKeyUsage: ['serverAuth', 'clientAuth'] });

  const rotate = await weft([...base, 'ca', 'rotate']);
  t.equal(rotate.code, 0, rotate.stderr);
  t.match(rotate.stdout, /rotated to root [0-9a-f]{16}; the previous root stays trusted until /);
  t.match(rotate.stdout, /published the trust bundle \(2 roots\)/);
  t.equal((await readBundle(c.consul))?.roots.length, 2);

  const publish = await weft([...base, 'ca', 'publish']);
  t.equal(publish.code, 0, publish.stderr);
  t.match(publish.stdout, /published the trust bundle \(2 roots\)/, 'old root kept until its retirement time');
});

t.test('init and rotate still work when Consul is down, and say the bundle was not published', async (t) => {
  const data = tempDir(t);
  const base = ['--data-dir', data, '--consul', '127.0.0.1:1'];
  const init = await weft([...base, 'ca', 'init', '--intermediate']);
  t.equal(init.code, 0);
  t.match(init.stdout, /with intermediate/);
  t.match(init.stderr, /WEFT_ERR_CONSUL_UNAVAILABLE: the trust bundle was NOT published/);
  t.match(init.stderr, /weft ca publish/);
  const publish = await weft([...base, 'ca', 'publish']);
  t.equal(publish.code, 2, 'an explicit publish fails loudly');
  t.match(publish.stderr, /WEFT_ERR_CONSUL_UNAVAILABLE/);
  const noPublish = await weft([...base, 'ca', 'rotate', '--no-publish']);
  t.equal(noPublish.code, 0);
  t.equal(noPublish.stderr, '');
});

t.test('operator mistakes give coded errors', async (t) => {
  const data = tempDir(t);
  const base = ['--data-dir', data, '--consul', '127.0.0.1:1'];
  const cases: Array<[string, string[], RegExp]> = [
    ['rotate without a CA', [...base, 'ca', 'rotate'], /WEFT_ERR_CA_MISSING: no CA in .*weft ca init/],
    ['bad trust domain', [...base, 'ca', 'init', '--trust-domain', 'UPPER'], /WEFT_ERR_CONFIG_INVALID: ca\.trustDomain/],
    ['inspect a missing file', ['cert', 'inspect', join(data, 'nope.pem')], /WEFT_ERR_CERT_INVALID/],
  ];
  const results = await Promise.all(cases.map(([, args]) => weft(args)));
  for (const [i, [name, , want]] of cases.entries()) {
    t.equal(results[i]!.code, 2, name);
    t.match(results[i]!.stderr, want, name);
  }
  t.equal((await weft([...base, 'ca', 'init', '--no-publish'])).code, 0);
  const bad = await weft([...base, 'cert', 'issue', '--service', 'bad name', '--out', join(data, 'x')]);
  t.match(bad.stderr, /WEFT_ERR_SPIFFE_ID_INVALID: service/);
  const long = await weft([...base, 'cert', 'issue', '--service', 'web', '--out', join(data, 'x'), '--ttl-hours', '100']);
  t.match(long.stderr, /WEFT_ERR_CONFIG_INVALID: ttl/);
});

t.test('the real binary: ca init then cert inspect', async (t) => {
  const data = tempDir(t);
  const init = await weftBinary(['--data-dir', data, '--consul', '127.0.0.1:1', 'ca', 'init']);
  t.equal(init.code, 0, init.stderr);
  t.match(init.stdout, /created CA for trust domain weft\.local/);
  t.match(init.stderr, /weft: WEFT_ERR_CONSUL_UNAVAILABLE: the trust bundle was NOT published/);
  const rootPem = JSON.parse(readFileSync(join(data, 'ca', 'ca.json'), 'utf8')).roots[0].certPem as string;
  const file = join(data, 'root.pem');
  writeFileSync(file, rootPem);
  const inspect = await weftBinary(['cert', 'inspect', file]);
  t.equal(inspect.code, 0, inspect.stderr);
  t.match(inspect.stdout, /SPIFFE ID: +\(none: peer certificate is a CA certificate/);
  t.match(inspect.stdout, /SANs: +URI:spiffe:\/\/weft\.local\n/);
  t.match(inspect.stdout, /key: +ec-p256, CA certificate/);
  const missing = await weftBinary(['--data-dir', join(data, 'none'), 'ca', 'rotate']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^weft: WEFT_ERR_CA_MISSING: /);
});

t.test('no private key is ever printed', async (t) => {
  t.ok(outputs.length > 0);
  t.notMatch(outputs.join('\n'), /PRIVATE KEY/);
});
