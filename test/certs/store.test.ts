import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bundlePem } from '../../certs/bundle.js';
import { generateKeyPair } from '../../certs/keys.js';
import { caKeyId } from '../../certs/profiles.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { caDir, caExists, loadCa, readIdentityFiles, saveCa, writeIdentityFiles } from '../../certs/store.js';
import { TD, makeCa, makeIdentity } from './fixtures.js';

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-certs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

for (const intermediate of [false, true]) {
  t.test(`save and load round-trip, keys 0600 in a 0700 directory (${intermediate ? 'intermediate' : 'root only'})`, async (t) => {
    const dataDir = tempDir(t);
    t.equal(caExists(dataDir), false);
    const ca = makeCa({ intermediate });
    saveCa(dataDir, ca);
    const dir = caDir(dataDir);
    const files = readdirSync(dir).sort();
    const root = `root-${ca.state.activeRootId}.key.pem`;
    const inter = intermediate ? [`intermediate-${caKeyId(new X509Certificate(ca.state.intermediatePem!).publicKey)}.key.pem`] : [];
    t.strictSame(files, ['ca.json', ...inter, root], 'state plus one key file per active CA key');
    t.equal(mode(dir), '700');
    for (const f of files.filter((f) => f.endsWith('.key.pem'))) t.equal(mode(join(dir, f)), '600', `${f} is 0600`);
    t.notMatch(readFileSync(join(dir, 'ca.json'), 'utf8'), /PRIVATE KEY/, 'state file holds no private key');

    const loaded = loadCa(dataDir);
    t.strictSame(loaded.state, ca.state);
    const { publicKey } = generateKeyPair();
    t.ok(loaded.issue(publicKey, spiffeId(TD, 'default', 'web')), 'the loaded CA signs');
  });
}

t.test('rotation writes the new key and removes the old one', async (t) => {
  const dataDir = tempDir(t);
  const ca = makeCa({ intermediate: true });
  saveCa(dataDir, ca);
  const before = readdirSync(caDir(dataDir)).filter((f) => f.endsWith('.key.pem'));
  ca.rotate();
  saveCa(dataDir, ca);
  const after = readdirSync(caDir(dataDir)).filter((f) => f.endsWith('.key.pem'));
  t.equal(after.length, 2, 'one root key, one intermediate key');
  t.strictSame(after.filter((f) => before.includes(f)), [], 'old keys gone');
  t.ok(after.includes(`root-${ca.state.activeRootId}.key.pem`));
  const loaded = loadCa(dataDir);
  t.equal(loaded.state.roots.length, 2, 'the old root is still trusted after reload');
  t.ok(loaded.state.roots[1]!.crossSignedPem);
});

t.test('loading refuses key files others can read, and says how to fix it', async (t) => {
  const dataDir = tempDir(t);
  const ca = makeCa();
  saveCa(dataDir, ca);
  const key = join(caDir(dataDir), `root-${ca.state.activeRootId}.key.pem`);
  chmodSync(key, 0o644);
  t.throws(() => loadCa(dataDir), { code: 'WEFT_ERR_CA_STORE', message: /readable by group or others \(mode 0644\); run chmod 600/ });
  chmodSync(key, 0o600);
  t.ok(loadCa(dataDir));
});

t.test('missing CA, corrupt state and mismatched keys give coded errors', async (t) => {
  const dataDir = tempDir(t);
  t.throws(() => loadCa(dataDir), { code: 'WEFT_ERR_CA_MISSING', message: /weft ca init/ });
  const ca = makeCa();
  saveCa(dataDir, ca);
  const stateFile = join(caDir(dataDir), 'ca.json');
  const good = readFileSync(stateFile, 'utf8');
  writeFileSync(stateFile, '{ nope');
  t.throws(() => loadCa(dataDir), { code: 'WEFT_ERR_CA_STORE' });
  writeFileSync(stateFile, JSON.stringify({ version: 2 }));
  t.throws(() => loadCa(dataDir), { code: 'WEFT_ERR_CA_STORE' });
  // Another CA's key under this CA's file name.
  writeFileSync(stateFile, good);
  const other = makeCa();
  const otherDir = tempDir(t);
  saveCa(otherDir, other);
  const otherKey = readFileSync(join(caDir(otherDir), `root-${other.state.activeRootId}.key.pem`));
  writeFileSync(join(caDir(dataDir), `root-${ca.state.activeRootId}.key.pem`), otherKey, { mode: 0o600 });
  t.throws(() => loadCa(dataDir), { code: 'WEFT_ERR_CA_STORE', message: /does not match/ });
});

t.test('identity files: key 0600, cert chain and bundle readable', async (t) => {
  const dir = join(tempDir(t), 'web');
  const ca = makeCa({ intermediate: true });
  const id = makeIdentity(ca, 'web');
  const paths = writeIdentityFiles(dir, id);
  t.equal(mode(paths.key), '600');
  t.equal(mode(paths.cert), '644');
  t.strictSame(readIdentityFiles(dir), { keyPem: id.keyPem, certChainPem: id.certChainPem, bundlePem: bundlePem(ca.bundle()) });
  chmodSync(paths.key, 0o640);
  t.throws(() => readIdentityFiles(dir), { code: 'WEFT_ERR_CA_STORE' });
});
