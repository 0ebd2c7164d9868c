import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { bundlePem } from '../../certs/bundle.js';
import { chainPems } from '../../certs/rotation.js';
import { readCertificateFields } from '../../certs/x509-reader.js';
import { TD, attempt, client, makeCa, makeIdentity, startMeshServer } from './fixtures.js';

const HOUR = 3600_000;
const LEAF_TTL = 2 * HOUR;

/**
 * A CA on a clock the test moves: the time the test started plus an offset, so
 * OpenSSL still sees valid dates and no millisecond passes between two reads.
 */
function clockedCa(opts: { intermediate?: boolean } = {}) {
  const start = Date.now();
  const clock = { offset: 0, now: () => start + clock.offset };
  const ca = makeCa({ leafTtlMs: LEAF_TTL, clock: clock.now, ...opts });
  return { ca, clock };
}

t.test('rotate: new root cross-signed by the old one, old root retires after 2 x leaf TTL', async (t) => {
  const { ca, clock } = clockedCa();
  const r1 = ca.state.roots[0]!;
  const at = clock.now();
  const { rootId, retireAt } = ca.rotate();
  t.equal(ca.state.activeRootId, rootId);
  t.not(rootId, r1.id);
  t.equal(retireAt.getTime(), at + 2 * LEAF_TTL, 'retires at rotation + 2 x leaf TTL');
  t.strictSame(ca.bundle().roots.map((r) => r.id), [r1.id, rootId], 'both roots in the bundle during the overlap');
  t.equal(ca.bundle().roots[0]!.retireAt, retireAt.toISOString());
  t.equal(ca.nextRetirement()?.getTime(), retireAt.getTime());

  const oldRoot = new X509Certificate(r1.certPem);
  const newRoot = new X509Certificate(ca.state.roots[1]!.certPem);
  const cross = new X509Certificate(ca.state.roots[1]!.crossSignedPem!);
  t.equal(cross.subject, newRoot.subject, 'cross-sign has the new root subject');
  t.ok(cross.publicKey.equals(newRoot.publicKey), '... and key');
  t.equal(cross.issuer, oldRoot.subject, 'issued by the old root');
  t.ok(cross.verify(oldRoot.publicKey) && cross.checkIssued(oldRoot), 'signed by the old root key');
  t.equal(cross.ca, true);
  t.equal(readCertificateFields(cross.raw).subjectKeyId, readCertificateFields(newRoot.raw).subjectKeyId, 'same SKI, so AKI matching finds either');
  t.ok(new Date(cross.validTo).getTime() <= new Date(oldRoot.validTo).getTime(), 'never outlives the old root');
  t.strictSame(chainPems(ca.state), [ca.state.roots[1]!.crossSignedPem], 'leaves are served with the cross-signed root');
  t.strictSame(Object.keys(ca.keys), ['root'], 'only the new root key is kept');

  clock.offset += 2 * LEAF_TTL - 1000;
  t.strictSame(ca.prune(), [], 'nothing dropped before the time');
  clock.offset += 1000;
  t.strictSame(ca.prune(), [r1.id], 'old root dropped at rotation + 2 x leaf TTL');
  t.strictSame(ca.bundle().roots.map((r) => r.id), [rootId]);
  t.strictSame(chainPems(ca.state), [], 'no cross-sign once its issuer is gone');
  t.equal(ca.nextRetirement(), undefined);
});

for (const intermediate of [false, true]) {
  t.test(`old-root and new-root leaves talk both ways during the overlap (${intermediate ? 'with' : 'without'} intermediate)`, async (t) => {
    const { ca } = clockedCa({ intermediate });
    const oldWeb = makeIdentity(ca, 'web');
    const oldApi = makeIdentity(ca, 'api');
    ca.rotate();
    const overlap = bundlePem(ca.bundle());
    const newWeb = makeIdentity(ca, 'web');
    const newApi = makeIdentity(ca, 'api');

    const srvOld = await startMeshServer(t, { ...oldWeb, bundlePem: overlap });
    const a = await attempt(srvOld.port, client(newApi));
    t.equal(a.greeting, `hello spiffe://${TD}/ns/default/svc/api\n`, 'new-root client -> old-root server');
    t.equal(a.serverId, `spiffe://${TD}/ns/default/svc/web`);

    const srvNew = await startMeshServer(t, newWeb);
    const b = await attempt(srvNew.port, client({ ...oldApi, bundlePem: overlap }));
    t.equal(b.greeting, `hello spiffe://${TD}/ns/default/svc/api\n`, 'old-root client -> new-root server');

    // A peer that has not fetched the new bundle yet still trusts only the old root:
    // the cross-signed root in the new leaf's chain carries it over.
    const stale = await attempt(srvNew.port, client({ ...oldApi, bundlePem: oldApi.bundlePem }));
    t.equal(stale.greeting, `hello spiffe://${TD}/ns/default/svc/api\n`, 'stale client (old root only) accepts a new-root server');
    const srvStale = await startMeshServer(t, oldWeb);
    const c = await attempt(srvStale.port, client(newApi));
    t.equal(c.greeting, `hello spiffe://${TD}/ns/default/svc/api\n`, 'stale server (old root only) accepts a new-root client');

    // Without the cross-sign the stale peer would refuse: the chain is what makes it work.
    const bare = { ...newApi, certChainPem: newApi.certChainPem.replace(ca.state.roots[1]!.crossSignedPem!.trimEnd() + '\n', '') };
    t.not(bare.certChainPem, newApi.certChainPem, 'cross-sign removed from the chain');
    const refused = await attempt(srvStale.port, client(bare));
    t.equal(refused.greeting, '', 'stale server refuses a new-root leaf without the cross-sign');
  });
}

t.test('after the old root is dropped, old-root leaves are refused', async (t) => {
  const { ca, clock } = clockedCa();
  const oldApi = makeIdentity(ca, 'api');
  ca.rotate();
  const newWeb = makeIdentity(ca, 'web');
  const newApi = makeIdentity(ca, 'api');
  clock.offset += 2 * LEAF_TTL; // leaves above were issued at real time, so OpenSSL still finds them valid
  t.strictSame(ca.prune().length, 1);
  const afterDrop = bundlePem(ca.bundle());
  const srv = await startMeshServer(t, { ...newWeb, bundlePem: afterDrop });
  t.equal((await attempt(srv.port, client({ ...oldApi, bundlePem: afterDrop }))).greeting, '', 'old-root leaf refused');
  t.equal((await attempt(srv.port, client({ ...newApi, bundlePem: afterDrop }))).greeting, `hello spiffe://${TD}/ns/default/svc/api\n`, 'new-root leaf fine');
});

t.test('two rotations inside one overlap: a peer on the first root still accepts the third', async (t) => {
  const { ca } = clockedCa({ intermediate: true });
  const firstOnly = makeIdentity(ca, 'web');
  ca.rotate();
  ca.rotate();
  t.equal(ca.bundle().roots.length, 3);
  t.equal(chainPems(ca.state).length, 3, 'intermediate + two cross-signs');
  const srv = await startMeshServer(t, firstOnly);
  t.equal((await attempt(srv.port, client(makeIdentity(ca, 'api')))).greeting, `hello spiffe://${TD}/ns/default/svc/api\n`);
});
