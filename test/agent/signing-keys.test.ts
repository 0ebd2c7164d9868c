/**
 * agent/signing-keys.ts: the host's copy of the scheduler's public signing
 * keys. From a real `weft scheduler` with the host's agent token (and refused
 * with a forged one); from the scheduler's key folder on the same machine
 * without a token; none at all said once, with why; the set handed to the
 * proxy in <dataDir>/proxy/signing-keys.json and used again after a restart
 * while the scheduler is away; a rotation picked up.
 */
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { proxyKeySetPath, SigningKeys } from '../../agent/signing-keys.js';
import { parseKeySet, type SigningKeySet } from '../../base/signing.js';
import { SigningKeyStore } from '../../src/wiring/scheduler-signing.js';
import { agentToken } from '../../src/wiring/scheduler-token.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { freePort } from '../helpers/ports.js';
import { testSigner } from '../helpers/signing.js';
import { api, schedulerDataDir, startSchedulerChild, TOKEN } from '../integration/scheduler-cluster.js';
import { captureLogger } from './helpers.js';

async function hostDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-agent-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const handedOver = (dataDir: string): SigningKeySet => parseKeySet(readFileSync(proxyKeySetPath(dataDir), 'utf8'), 'proxy file');

t.test('from the scheduler with the host token; refused with a forged one; kept across a restart without it', async (t) => {
  const consul = await startTestConsul(t);
  const env = await schedulerDataDir(t, consul);
  const sched = await startSchedulerChild(t, env);
  const published = parseKeySet((await api(sched.url, 'GET', '/v1/signing/keys')).text, 'api');
  t.equal(published.keys.length, 1, 'the scheduler created its key on first start');
  t.equal(statSync(join(env.dataDir, 'scheduler', 'signing')).mode & 0o777, 0o700, 'its folder is 0700');
  t.equal(statSync(join(env.dataDir, 'scheduler', 'signing', `${published.keys[0]!.kid}.key`)).mode & 0o777, 0o600, 'its private key 0600');

  const dataDir = await hostDir(t);
  const { logger, lines } = captureLogger();
  const keys = new SigningKeys({ dataDir, scheduler: { address: sched.url, token: agentToken(TOKEN, 'h1') }, refreshMs: 60_000, logger });
  t.teardown(() => keys.stop());
  await keys.start();
  t.strictSame(keys.current(), published, 'fetched with the host token');
  t.strictSame(handedOver(dataDir), published, 'and handed to the proxy');
  t.equal(statSync(proxyKeySetPath(dataDir)).mode & 0o777, 0o644, 'public keys: readable by a proxy running as another user');

  const forgedDir = await hostDir(t);
  const forged = new SigningKeys({ dataDir: forgedDir, scheduler: { address: sched.url, token: 'weft-host.h1.forged' }, refreshMs: 60_000, logger });
  t.teardown(() => forged.stop());
  await forged.start();
  t.equal(forged.current(), undefined, 'a forged token gets no keys');
  const refused = lines.filter((l) => l['code'] === 'WEFT_ERR_API_UNAUTHORIZED');
  t.equal(refused.length, 1, 'said once, with the scheduler code');
  t.match(String(refused[0]?.['msg']), /no signing keys .*admits no intention or split/);

  // The agent restarts while the scheduler is unreachable: it starts from the keys it handed over.
  const away = new SigningKeys({ dataDir, scheduler: { address: `127.0.0.1:${await freePort()}`, token: agentToken(TOKEN, 'h1') }, refreshMs: 60_000, logger });
  t.teardown(() => away.stop());
  await away.start();
  t.strictSame(away.current(), published, 'the last keys stay in force');
  t.ok(
    lines.some((l) => l['code'] === 'WEFT_ERR_SCHEDULER_UNREACHABLE' && /keeping the 1 known/.test(String(l['msg']))),
    'the failed refresh is a warning that keeps them',
  );
});

t.test('without a token: the scheduler keys on this machine; a rotation is picked up on refresh', async (t) => {
  const signer = await testSigner(t);
  const dataDir = await hostDir(t);
  await signer.installFor(dataDir);
  const { logger } = captureLogger();
  const keys = new SigningKeys({ dataDir, refreshMs: 60_000, logger });
  t.teardown(() => keys.stop());
  const changes: SigningKeySet[] = [];
  keys.on('change', (set) => changes.push(set));
  await keys.start();
  t.strictSame(keys.current(), signer.keySet());
  t.strictSame(handedOver(dataDir), signer.keySet());
  await keys.refresh();
  t.equal(changes.length, 1, 'an unchanged set is no change');

  const moreDir = await hostDir(t);
  await signer.installFor(moreDir); // the same keys, so the same machine after a rotation below
  const local = new SigningKeys({ dataDir: moreDir, refreshMs: 60_000, logger });
  t.teardown(() => local.stop());
  await local.start();
  const { store } = SigningKeyStore.open(moreDir);
  const rotated = store.rotate(3_600_000);
  await local.refresh();
  t.strictSame(
    local.current()?.keys.map((k) => [k.kid, k.retireAt === undefined]),
    [
      [rotated.retiring[0]!.kid, false],
      [rotated.kid, true],
    ],
    'the new key, and the old one with its retire time',
  );
  t.strictSame(handedOver(moreDir), local.current(), 'handed to the proxy');
});

t.test('no token and no scheduler on this machine: no keys, and it says why once', async (t) => {
  const dataDir = await hostDir(t);
  const { logger, lines } = captureLogger();
  const keys = new SigningKeys({ dataDir, refreshMs: 60_000, logger });
  t.teardown(() => keys.stop());
  await keys.start();
  await keys.refresh();
  t.equal(keys.current(), undefined);
  const said = lines.filter((l) => l['code'] === 'WEFT_ERR_SIGNING_KEYS');
  t.equal(said.length, 1, 'once, not at every retry');
  t.match(String(said[0]?.['msg']), /no .*scheduler\/signing\/keys\.json and no scheduler token \(client\.token\).*admits no intention or split/);
});
