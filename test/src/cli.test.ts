import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';

const bin = new URL('../../bin/weft.js', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Runs the real `weft` binary, as a user would. */
function weft(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, WEFT_CONFIG: '', ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('--version prints the package version', async (t) => {
  const r = weft(['--version']);
  t.equal(r.code, 0);
  t.equal(r.stdout.trim(), pkg.version);
});

t.test('--help lists a subcommand for every process and the environment', async (t) => {
  const r = weft(['--help']);
  t.equal(r.code, 0);
  for (const cmd of ['up', 'dev-consul', 'agent', 'proxy', 'scheduler']) t.match(r.stdout, new RegExp(`\\n  ${cmd}\\b`), cmd);
  t.match(r.stdout, /CONSUL_HTTP_ADDR/);
});

t.test('a bad flag value exits 2 with the code, the key and the value', async (t) => {
  const r = weft(['dev-consul', '--port', 'eighty']);
  t.equal(r.code, 2);
  t.match(r.stderr, /WEFT_ERR_CONFIG_INVALID: devConsul\.port: must be integer \(got "eighty" from flag --port\)/);
});

t.test('a bad environment value names the variable', async (t) => {
  const r = weft(['dev-consul'], { WEFT_LOG_FORMAT: 'xml' });
  t.equal(r.code, 2);
  t.match(r.stderr, /log\.format: must be one of auto, json, pretty \(got "xml" from env WEFT_LOG_FORMAT\)/);
});

t.test('an unknown subcommand fails with usage help', async (t) => {
  const r = weft(['launch']);
  t.not(r.code, 0);
  t.match(r.stderr, /unknown command 'launch'/);
});
