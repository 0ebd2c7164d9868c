import { chmodSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeIdentityFiles } from '../../../certs/store.js';
import { IdentityStore } from '../../../src/wiring/proxy-identities.js';
import { storeOutboundTls } from '../../../src/wiring/proxy-tls.js';
import { makeCa, makeIdentity, TD } from '../../certs/fixtures.js';

t.test('identities load from disk, reload on change, keep the last good on a bad file, and move the TLS generation', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-ids-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ca = makeCa();
  const store = new IdentityStore(dir);
  const tls = storeOutboundTls(store, TD);
  t.equal(store.refresh(), false, 'empty folder: nothing');
  t.equal(tls.clientOptions('web', 'api'), undefined, 'no identity: no client options');

  writeIdentityFiles(join(dir, 'web'), makeIdentity(ca, 'web'));
  t.equal(store.refresh(), true);
  t.strictSame(store.services(), ['web']);
  const first = tls.clientOptions('web', 'api');
  t.ok(first?.secureContext, 'client options with a prebuilt context');
  t.equal(tls.clientOptions('web', 'api'), first, 'cached per (caller, destination)');
  t.equal(store.refresh(), false, 'unchanged files are not re-read');
  t.match(store.bundlePem(), /BEGIN CERTIFICATE/);

  const g = tls.generation?.();
  writeIdentityFiles(join(dir, 'web'), makeIdentity(ca, 'web')); // a renewal
  t.equal(store.refresh(), true);
  t.not(tls.generation?.(), g, 'generation moved: pools start over');
  t.not(tls.clientOptions('web', 'api'), first, 'new options after a renewal');

  const notAfter = store.get('web')?.notAfter;
  chmodSync(join(dir, 'web', 'key.pem'), 0o644);
  writeIdentityFiles(join(dir, 'web'), makeIdentity(ca, 'web'));
  chmodSync(join(dir, 'web', 'key.pem'), 0o644);
  t.equal(store.refresh(), false, 'an unsafe key file is refused');
  t.equal(store.get('web')?.notAfter, notAfter, 'the last good identity stays');

  await rm(join(dir, 'web'), { recursive: true });
  t.equal(store.refresh(), true);
  t.strictSame(store.services(), [], 'removed');
});
