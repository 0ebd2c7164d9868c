/**
 * base/signing.ts: the envelope and its verification, as an agent or a proxy
 * sees it. A table of values that must be refused, each with its reason;
 * the gate's last verified state, rollback and once-per-value refusals; key
 * sets that do not parse.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import t from 'tap';
import { isWeftError } from '../../base/errors.js';
import {
  nextSignedAt,
  parseKeySet,
  publicKeyEntry,
  type RefusalReason,
  SignedDocGate,
  type SigningKeySet,
  signDocument,
  unwrapDocument,
  verifierOf,
  verify,
} from '../../base/signing.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;

function keyPair(): { privateKey: KeyObject; kid: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, kid: publicKeyEntry(privateKey, new Date(T0).toISOString()).kid };
}

const current = keyPair();
const old = keyPair();
const stranger = keyPair();
/** The old key was rotated out at T0 with a 24 h overlap. */
const set: SigningKeySet = {
  keys: [publicKeyEntry(current.privateKey, new Date(T0).toISOString()), publicKeyEntry(old.privateKey, new Date(T0 - 100 * HOUR).toISOString(), new Date(T0 + 24 * HOUR).toISOString())],
};
const verifier = verifierOf(set);
const path = 'weft/allocs/h1/web-1';
const doc = JSON.stringify({ id: 'web-1', job: 'web', task: { driver: 'process', command: 'sleep', args: ['1000'] } });
const signed = signDocument(current, path, doc, T0);

t.test('a document signed for its key verifies and gives back its text', async (t) => {
  const v = verify(verifier, path, signed, T0);
  t.ok(v.ok);
  if (v.ok) {
    t.equal(v.doc, doc, 'the exact text the scheduler signed');
    t.equal(v.kid, current.kid);
    t.equal(v.signedAt, T0);
  }
  t.match(current.kid, /^[0-9a-f]{16}$/, 'a key id is 16 hex digits of the public key hash');
  t.equal(unwrapDocument(signed), doc, "the scheduler's own readers unwrap without verifying");
  t.equal(unwrapDocument(doc), undefined, 'a plain document is no envelope');
});

t.test('refused values, each with its reason', async (t) => {
  const envelope = JSON.parse(signed) as Record<string, unknown>;
  const tampered = JSON.stringify({ ...envelope, doc: doc.replace('sleep', 'rm') });
  const later = JSON.stringify({ ...envelope, signedAt: T0 + 1 });
  const cases: Array<[why: string, key: string, raw: string | null, now: number, reason: RefusalReason]> = [
    ['written by hand, without the scheduler', path, doc, T0, 'unsigned'],
    ['not JSON at all', path, 'rm -rf /', T0, 'unsigned'],
    ['an empty value', path, '', T0, 'unsigned'],
    ['a deleted value read as null', path, null, T0, 'unsigned'],
    ['a tampered document', path, tampered, T0, 'bad-signature'],
    ['a changed signing time', path, later, T0, 'bad-signature'],
    ['moved to another host', 'weft/allocs/h2/web-1', signed, T0, 'bad-signature'],
    ['replayed under another name', 'weft/allocs/h1/web-2', signed, T0, 'bad-signature'],
    ['moved to another kind of document', 'weft/intentions/web/api', signed, T0, 'bad-signature'],
    ['signed by a key the scheduler never published', path, signDocument(stranger, path, doc, T0), T0, 'unknown-key'],
    ["signed by another key under this key's id", path, JSON.stringify({ ...JSON.parse(signDocument(stranger, path, doc, T0)), kid: current.kid }), T0, 'bad-signature'],
    ['signed by the old key after its overlap', path, signDocument(old, path, doc, T0), T0 + 24 * HOUR, 'retired-key'],
    ['version 2 of the envelope', path, JSON.stringify({ ...envelope, weft_signed: 2 }), T0, 'malformed'],
    ['an extra field', path, JSON.stringify({ ...envelope, note: 'hi' }), T0, 'malformed'],
    ['a kid that is no key id', path, JSON.stringify({ ...envelope, kid: 'scheduler' }), T0, 'malformed'],
    ['a signature that is no base64', path, JSON.stringify({ ...envelope, sig: 'not base64!' }), T0, 'malformed'],
    ['a document that is no string', path, JSON.stringify({ ...envelope, doc: JSON.parse(doc) }), T0, 'malformed'],
    ['no signing time', path, JSON.stringify({ ...envelope, signedAt: undefined }), T0, 'malformed'],
  ];
  for (const [why, key, raw, now, reason] of cases) {
    const v = verify(verifier, key, raw, now);
    t.equal(v.ok ? 'ok' : v.reason, reason, why);
    if (!v.ok) t.notMatch(v.detail, /sleep|rm /, `${why}: the detail does not repeat the document`);
  }
});

t.test('a rotated-out key verifies until its retire time, and not from then on', async (t) => {
  const byOld = signDocument(old, path, doc, T0);
  t.ok(verify(verifier, path, byOld, T0).ok, 'at the rotation');
  t.ok(verify(verifier, path, byOld, T0 + 24 * HOUR - 1).ok, 'the last millisecond of the overlap');
  t.equal((verify(verifier, path, byOld, T0 + 24 * HOUR) as { reason?: string }).reason, 'retired-key', 'at the retire time');
  t.ok(verify(verifier, path, signed, T0 + 1000 * HOUR).ok, 'the current key has no retire time');
});

t.test('the gate keeps the last verified document in force, refuses rollbacks, and reports a bad value once', async (t) => {
  const gate = new SignedDocGate();
  t.equal(gate.hasKeys, false);
  const none = gate.admit(path, signed, T0);
  t.equal(none.doc, undefined, 'without keys nothing is admitted (fail closed)');
  t.equal(none.refused?.reason, 'unknown-key');
  t.equal(gate.setKeys(set), true, 'new keys');
  t.equal(gate.setKeys({ keys: [...set.keys] }), false, 'the same keys again are no change');
  t.equal(gate.admit(path, signed, T0).doc, doc, 'admitted once the keys are known');

  const v2Doc = doc.replace('1000', '2000');
  const v2 = signDocument(current, path, v2Doc, T0 + 10);
  t.equal(gate.admit(path, v2, T0 + 20).doc, v2Doc, 'a newer version replaces it');
  const back = gate.admit(path, signed, T0 + 30);
  t.equal(back.refused?.reason, 'rollback', 'the older version written back is refused');
  t.equal(back.doc, v2Doc, 'and the newer one stays in force');

  const forged = gate.admit(path, '{"id":"web-1","task":{"command":"evil"}}', T0 + 40);
  t.equal(forged.refused?.reason, 'unsigned');
  t.equal(forged.doc, v2Doc, 'a hand-written value leaves the last verified one in force');
  t.equal(forged.fresh, true, 'reported the first time');
  t.equal(gate.admit(path, '{"id":"web-1","task":{"command":"evil"}}', T0 + 50).fresh, false, 'not again for the same value');
  t.equal(gate.admit(path, '{"id":"web-1","task":{"command":"evil2"}}', T0 + 60).fresh, true, 'again for another value');

  const other = 'weft/allocs/h1/web-9';
  const fresh = gate.admit(other, doc, T0);
  t.equal(fresh.doc, undefined, 'a key never verified has nothing in force');
  gate.retain([path]);
  t.equal(gate.admit(other, doc, T0).fresh, true, 'a deleted key is forgotten: its next bad value is news');
  gate.retain([]);
  t.equal(gate.admit(path, signed, T0).doc, doc, 'after a deletion, the key starts over');
});

t.test('nextSignedAt grows per key even when the writer clock is behind', async (t) => {
  t.equal(nextSignedAt(T0, undefined), T0);
  t.equal(nextSignedAt(T0, doc), T0, 'an unsigned previous value sets no floor');
  t.equal(nextSignedAt(T0 - 5000, signed), T0 + 1, 'a writer 5 s behind still signs after the previous version');
  t.equal(nextSignedAt(T0 + 5000.7, signed), T0 + 5000);
});

t.test('key sets that do not parse are refused with a coded error naming the field', async (t) => {
  const good = set.keys[0]!;
  const cases: Array<[why: string, text: string, message: RegExp]> = [
    ['not JSON', '{', /not JSON/],
    ['no keys list', '{"key":[]}', /must be \{"keys"/],
    ['a bad kid', JSON.stringify({ keys: [{ ...good, kid: 'x' }] }), /keys\[0\]\.kid must be 16 hex/],
    ['a kid of another key', JSON.stringify({ keys: [{ ...good, kid: set.keys[1]!.kid }] }), /does not match its public key/],
    ['a short key', JSON.stringify({ keys: [{ ...good, publicKey: 'AAAA' }] }), /32 bytes/],
    ['a bad retire time', JSON.stringify({ keys: [{ ...good, retireAt: 'soon' }] }), /retireAt must be an ISO time/],
  ];
  for (const [why, text, message] of cases) {
    try {
      parseKeySet(text, 'GET /v1/signing/keys');
      t.fail(`${why}: accepted`);
    } catch (err) {
      t.ok(isWeftError(err, 'WEFT_ERR_SIGNING_KEYS'), `${why}: coded`);
      t.match((err as Error).message, /^GET \/v1\/signing\/keys: /, `${why}: names the source`);
      t.match((err as Error).message, message, why);
    }
  }
  t.strictSame(parseKeySet(JSON.stringify(set), 'file'), set, 'a good set round-trips');
});
