/**
 * Scheduler API routes against a real `weft scheduler` and two process-driver
 * hosts: raw YAML submits, versions and revert, the event ring (API events
 * survive the leader's writes), node drain, CSR signing by agent tokens,
 * splits and intentions as the proxies read them from KV (signed by the
 * scheduler's key, which agents read with their token), key rotation.
 */
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { CertificateAuthority } from '../../certs/ca.js';
import { createCsr } from '../../certs/csr.js';
import { generateKeyPair } from '../../certs/keys.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { saveCa } from '../../certs/store.js';
import { validateSplit } from '../../proxy/balance/split.js';
import { parseIntentionDocument } from '../../proxy/inbound/intentions.js';
import { parseKeySet, type SigningKeySet, verifierOf, verify } from '../../base/signing.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { api, schedulerDataDir, startSchedulerChild, startSimAgent } from './scheduler-cluster.js';

const DEMO = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;
const TD = 'weft.local';

/** The job as YAML text, as `weft deploy file.yaml` sends it. */
function yamlSpec(opts: { count: number; v: string }): string {
  return [
    'name: web',
    'update:',
    '  minHealthyTime: 1s',
    '  healthDeadline: 15s',
    'groups:',
    '  - name: app',
    `    count: ${opts.count}`,
    '    tasks:',
    '      - name: api',
    '        driver: process',
    `        command: ${JSON.stringify(process.execPath)}`,
    `        args: [${JSON.stringify(DEMO)}]`,
    '        port: 0',
    '        resources: { cpu: 100, memory: 64 }',
    `        env: { DRAIN_MS: "200", V: "${opts.v}" }`,
    '        check: { http: /health, interval: 1s, timeout: 500ms, failures: 1 }',
    '',
  ].join('\n');
}

interface Status {
  version: number;
  allocations: Array<{ id: string; node: string; status: string; healthy?: boolean; version: number }>;
  deployment?: { version: number; status: string };
  events: Array<{ type: string; message: string; version?: number }>;
}

t.test('scheduler API routes', async (t) => {
  const consul = await startTestConsul(t);
  const shared = await schedulerDataDir(t, consul);
  saveCa(shared.dataDir, CertificateAuthority.create({ trustDomain: TD }));
  const sched = await startSchedulerChild(t, shared);
  const url = (): string => sched.url;
  // 127.0.4.x: other test files run at the same time on other addresses.
  await startSimAgent(t, consul, 'h1', '127.0.4.2', url);
  await startSimAgent(t, consul, 'h2', '127.0.4.3', url);
  const status = async (): Promise<Status> => (await api(url(), 'GET', '/v1/jobs/web/status')).body as unknown as Status;
  const healthy = async (n: number, where?: (s: Status) => boolean): Promise<Status> =>
    eventually(
      async () => {
        const s = await status();
        const ok = s.allocations.filter((a) => a.status === 'running' && a.healthy === true);
        return s.allocations.length === n && ok.length === n && (where === undefined || where(s)) ? s : undefined;
      },
      30_000,
      `${n} healthy allocations`,
      250,
    );
  /** A version is stable once its deployment succeeded (healthy for minHealthyTime), not merely healthy. */
  /** The signing keys as an agent fetches them with its host token. */
  const agentKeys = async (): Promise<SigningKeySet> => {
    const token = (await api(url(), 'POST', '/v1/nodes/h1/token')).body['token'] as string;
    const r = await api(url(), 'GET', '/v1/signing/keys', undefined, token);
    if (r.status !== 200) throw new Error(`an agent token could not read the signing keys: ${r.status} ${r.text}`);
    return parseKeySet(r.text, 'GET /v1/signing/keys');
  };
  /** The document at `key` as a host admits it: verified against the scheduler's keys for this key path. */
  const admitted = async (key: string): Promise<string> => {
    const kv = (await consul.consul.kv.get(key)) as { Value: string };
    const v = verify(verifierOf(await agentKeys()), key, kv.Value, Date.now());
    if (!v.ok) throw new Error(`${key} refused: ${v.reason} ${v.detail}`);
    return v.doc;
  };
  const deployed = async (version: number): Promise<Status> =>
    eventually(
      async () => {
        const s = await status();
        return s.deployment?.version === version && s.deployment.status === 'successful' ? s : undefined;
      },
      30_000,
      `deployment of version ${version}`,
      250,
    );
  const raw = async (body: string, contentType: string) =>
    fetch(`${url()}/v1/jobs`, { method: 'POST', headers: { authorization: 'Bearer test-operator-token-0123456789abcdef', 'content-type': contentType }, body }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as Record<string, unknown>,
    }));

  await t.test('a raw YAML body is a job spec', async (t) => {
    const r = await raw(yamlSpec({ count: 2, v: '1' }), 'application/yaml');
    t.equal(r.status, 200, JSON.stringify(r.body));
    t.strictSame([r.body['job'], r.body['version'], r.body['change']], ['web', 1, 'create']);
    const job = (await api(url(), 'GET', '/v1/jobs/web')).body as { spec: { groups: Array<{ count: number; tasks: Array<{ env: Record<string, string> }> }> } };
    t.equal(job.spec.groups[0]!.tasks[0]!.env['V'], '1', 'stored as parsed');
    const same = await raw(yamlSpec({ count: 2, v: '1' }), 'text/plain');
    t.strictSame([same.status, same.body['change'], same.body['version']], [200, 'none', 1], 'text/plain too; identical means no change');
    const bad = await raw('name: web\ngroups: [\n', 'text/yaml');
    t.strictSame([bad.status, bad.body['code']], [400, 'WEFT_ERR_JOB_INVALID'], 'a YAML syntax error');
    await healthy(2);
    await deployed(1);
  });

  await t.test('versions and revert', async (t) => {
    const v2 = await raw(yamlSpec({ count: 2, v: '2' }), 'application/yaml');
    t.strictSame([v2.body['version'], v2.body['change'], v2.body['previousVersion']], [2, 'update', 1]);
    await deployed(2);
    const versions = (await api(url(), 'GET', '/v1/jobs/web/versions')).body['versions'] as Array<{ version: number; stable: boolean }>;
    t.strictSame(versions.map((v) => [v.version, v.stable]), [[1, true], [2, true]], 'both deployments succeeded');
    const back = await api(url(), 'POST', '/v1/jobs/web/revert', { version: 1 });
    t.strictSame([back.status, back.body['version'], back.body['change'], back.body['previousVersion']], [200, 3, 'update', 2], 'a revert is a new version');
    const job = (await api(url(), 'GET', '/v1/jobs/web')).body as { version: number; spec: { groups: Array<{ tasks: Array<{ env: Record<string, string> }> }> } };
    t.strictSame([job.version, job.spec.groups[0]!.tasks[0]!.env['V']], [3, '1'], "version 3 runs version 1's spec");
    await deployed(3);
    await healthy(2, (s) => s.allocations.every((a) => a.version === 3));
    const missing = await api(url(), 'POST', '/v1/jobs/web/revert', { version: 99 });
    t.strictSame([missing.status, missing.body['code'], missing.body['key']], [404, 'WEFT_ERR_API_NOT_FOUND', 'body.version']);
    const nojob = await api(url(), 'POST', '/v1/jobs/nope/revert', { version: 1 });
    t.strictSame([nojob.status, nojob.body['code']], [404, 'WEFT_ERR_JOB_NOT_FOUND']);
    const zero = await api(url(), 'POST', '/v1/jobs/web/revert', { version: 0 });
    t.strictSame([zero.status, zero.body['code']], [400, 'WEFT_ERR_API_REQUEST_INVALID']);
  });

  await t.test("the API's events survive the leader's status writes", async (t) => {
    t.equal((await api(url(), 'POST', '/v1/jobs/web/scale', { count: 3 })).status, 200);
    await healthy(3);
    // The leader wrote placement events after the API's scaled event; nothing of either side is lost.
    const s = await eventually(async () => {
      const st = await status();
      return st.events.filter((e) => e.type === 'placed').length >= 7 ? st : undefined;
    }, 10_000, 'placement events');
    const types = s.events.map((e) => e.type);
    for (const [type, message] of [
      ['submitted', /version 1 submitted \(create\)/],
      ['submitted', /version 2 submitted \(update\)/],
      ['reverted', /version 3 reverted/],
      ['scaled', /app: 2 -> 3/],
    ] as const) {
      t.ok(s.events.some((e) => e.type === type && message.test(e.message)), `${type} ${message} is in the ring`);
    }
    t.ok(types.lastIndexOf('placed') > types.indexOf('scaled'), 'the placement after the scale follows it');
    t.ok(types.includes('deployment'), 'and the leader\'s deployment events are there too');
    const sorted = [...s.events].map((e) => (e as { at?: string }).at ?? '').sort();
    t.strictSame(s.events.map((e) => (e as { at?: string }).at ?? ''), sorted, 'oldest first');
  });

  await t.test('drain: allocations migrate off the drained host, and back is allowed again', async (t) => {
    const before = await status();
    const from = before.allocations[0]!.node;
    const to = from === 'h1' ? 'h2' : 'h1';
    const r = await api(url(), 'POST', `/v1/nodes/${from}/drain`, { enable: true });
    t.strictSame(r.body, { node: from, drain: true });
    const s = await healthy(3, (x) => x.allocations.every((a) => a.node === to));
    t.equal(s.allocations.length, 3, `all three on ${to}`);
    const nodes = (await api(url(), 'GET', '/v1/nodes')).body['nodes'] as Array<{ name: string; drain: boolean; readiness: string; allocations: number }>;
    const drained = nodes.find((n) => n.name === from)!;
    t.strictSame([drained.drain, drained.readiness, drained.allocations], [true, 'draining', 0], 'node ls shows it draining and empty');
    t.ok((await status()).events.some((e) => /migrate/.test(e.message)), 'migrations are events');
    const undrain = await api(url(), 'POST', `/v1/nodes/${from}/drain`, { enable: false });
    t.strictSame(undrain.body, { node: from, drain: false });
    t.equal(await consul.consul.kv.get(`weft/drain/${from}`), undefined, 'the drain flag is gone from KV');
    const unknown = await api(url(), 'POST', '/v1/nodes/h9/drain', { enable: true });
    t.strictSame([unknown.status, unknown.body['code']], [404, 'WEFT_ERR_API_NOT_FOUND']);
  });

  await t.test('CSR signing: an agent token claims only services allocated to its host', async (t) => {
    const s = await status();
    const on = s.allocations[0]!.node;
    const off = on === 'h1' ? 'h2' : 'h1';
    t.ok(s.allocations.every((a) => a.node === on), `every api allocation is on ${on}`);
    const tokenOf = async (host: string): Promise<string> => {
      const r = await api(url(), 'POST', `/v1/nodes/${host}/token`);
      t.equal(r.status, 200);
      return r.body['token'] as string;
    };
    const csr = (service: string, ns = 'default'): string => createCsr(generateKeyPair().privateKey, spiffeId(TD, ns, service));
    const sign = (pem: string, token: string) => api(url(), 'POST', '/v1/ca/sign', { csr: pem }, token);

    const onToken = await tokenOf(on);
    const ok = await sign(csr('api'), onToken);
    t.equal(ok.status, 200, ok.text);
    t.equal(ok.body['spiffeId'], `spiffe://${TD}/ns/default/svc/api`);
    const leaf = new X509Certificate(ok.body['certPem'] as string);
    t.match(leaf.subjectAltName, `URI:spiffe://${TD}/ns/default/svc/api`, 'the leaf carries the SPIFFE ID');
    t.match(ok.body['bundlePem'], /BEGIN CERTIFICATE/, 'with the trust bundle');

    const refused: Array<[string, string, string, number, string]> = [
      ['another service', csr('billing'), onToken, 403, 'WEFT_ERR_CSR_IDENTITY'],
      ['another namespace', csr('api', 'prod'), onToken, 403, 'WEFT_ERR_CSR_IDENTITY'],
      ["a host without the service's allocations", csr('api'), await tokenOf(off), 403, 'WEFT_ERR_CSR_IDENTITY'],
      ['another trust domain', createCsr(generateKeyPair().privateKey, spiffeId('evil.example', 'default', 'api')), onToken, 403, 'WEFT_ERR_CSR_IDENTITY'],
      ['not a CSR', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', onToken, 400, 'WEFT_ERR_CSR_INVALID'],
      ['a forged agent token', csr('api'), `weft-host.${on}.forged`, 401, 'WEFT_ERR_API_UNAUTHORIZED'],
    ];
    for (const [what, pem, token, code, error] of refused) {
      const r = await sign(pem, token);
      t.strictSame([r.status, r.body['code']], [code, error], `${what}: ${r.body['message']}`);
    }
    const operator = await api(url(), 'POST', '/v1/ca/sign', { csr: csr('anything') });
    t.equal(operator.status, 200, 'the operator token may claim any service of the trust domain');
    const roots = await api(url(), 'GET', '/v1/ca/roots', undefined, onToken);
    t.strictSame([roots.status, roots.body['trustDomain']], [200, TD], 'an agent token reads the roots');
    for (const [m, p] of [['GET', '/v1/jobs'], ['GET', '/v1/secrets'], ['POST', `/v1/nodes/${on}/token`], ['GET', '/metrics']] as const) {
      const r = await api(url(), m, p, undefined, onToken);
      t.strictSame([r.status, r.body['code']], [403, 'WEFT_ERR_API_FORBIDDEN'], `an agent token may not ${m} ${p}`);
    }
    const secrets = await api(url(), 'GET', `/v1/allocations/${off}/x-api/secrets`, undefined, onToken);
    t.strictSame([secrets.status, secrets.body['code']], [403, 'WEFT_ERR_API_FORBIDDEN'], "nor read another host's secrets");
  });

  await t.test('splits: validated by the proxy rules, stored where proxies read them', async (t) => {
    const put = await api(url(), 'PUT', '/v1/splits/api', { weights: { v1: 90, v2: 10 } });
    t.strictSame([put.status, put.body], [200, { service: 'api', weights: { v1: 90, v2: 10 } }]);
    t.strictSame(Object.fromEntries(validateSplit('api', JSON.parse(await admitted('weft/splits/api')))), { v1: 90, v2: 10 }, 'the KV document, signed for its key, is what a proxy loads');
    t.strictSame((await api(url(), 'GET', '/v1/splits/api')).body, { service: 'api', weights: { v1: 90, v2: 10 } });
    t.strictSame((await api(url(), 'GET', '/v1/splits')).body, { splits: [{ service: 'api', weights: { v1: 90, v2: 10 } }] });
    const invalid: Array<[string, string, unknown, string]> = [
      ['all weights zero', 'api', { weights: { v1: 0 } }, 'WEFT_ERR_SPLIT_INVALID'],
      ['no versions', 'api', { weights: {} }, 'WEFT_ERR_SPLIT_INVALID'],
      ['a bad version name', 'api', { weights: { '-v1': 5 } }, 'WEFT_ERR_SPLIT_INVALID'],
      ['a weight too big', 'api', { weights: { v1: 2_000_000 } }, 'WEFT_ERR_SPLIT_INVALID'],
      ['a negative weight', 'api', { weights: { v1: -1 } }, 'WEFT_ERR_SPLIT_INVALID'],
      ['a fractional weight', 'api', { weights: { v1: 1.5 } }, 'WEFT_ERR_API_REQUEST_INVALID'],
      ['an unknown field', 'api', { weights: { v1: 1 }, extra: true }, 'WEFT_ERR_API_REQUEST_INVALID'],
      ['a bad service name', '-api', { weights: { v1: 1 } }, 'WEFT_ERR_API_REQUEST_INVALID'],
    ];
    for (const [what, service, body, code] of invalid) {
      const r = await api(url(), 'PUT', `/v1/splits/${encodeURIComponent(service)}`, body);
      t.strictSame([r.status, r.body['code']], [400, code], `${what}: ${r.body['message']}`);
    }
    t.strictSame(JSON.parse(await admitted('weft/splits/api')), { v1: 90, v2: 10 }, 'a refused PUT changes nothing');
    t.strictSame((await api(url(), 'DELETE', '/v1/splits/api')).body, { deleted: true });
    t.equal(await consul.consul.kv.get('weft/splits/api'), undefined, 'gone from KV');
    t.strictSame((await api(url(), 'DELETE', '/v1/splits/api')).body, { deleted: false }, 'a second delete finds nothing');
    const gone = await api(url(), 'GET', '/v1/splits/api');
    t.strictSame([gone.status, gone.body['code']], [404, 'WEFT_ERR_API_NOT_FOUND']);
  });

  await t.test('intentions: stored where proxies read them', async (t) => {
    const deny = await api(url(), 'PUT', '/v1/intentions/web/api', { action: 'deny', description: 'no direct calls' });
    t.strictSame([deny.status, deny.body], [200, { source: 'web', destination: 'api', action: 'deny', description: 'no direct calls' }]);
    t.strictSame(parseIntentionDocument('weft/intentions/web/api', await admitted('weft/intentions/web/api')), { action: 'deny', description: 'no direct calls' }, 'the KV document, signed for its key, is what an inbound proxy loads');
    const wildcard = await api(url(), 'PUT', '/v1/intentions/*/api', { action: 'allow' });
    t.strictSame(wildcard.body, { source: '*', destination: 'api', action: 'allow' }, 'the wildcard source');
    const listed = (await api(url(), 'GET', '/v1/intentions')).body['intentions'] as Array<{ source: string }>;
    t.strictSame(listed.map((i) => i.source).sort(), ['*', 'web']);
    for (const [what, path, body] of [
      ['a bad action', '/v1/intentions/web/api', { action: 'maybe' }],
      ['an unknown field', '/v1/intentions/web/api', { action: 'allow', why: 'x' }],
      ['a bad name', '/v1/intentions/we%20b/api', { action: 'allow' }],
    ] as const) {
      const r = await api(url(), 'PUT', path, body);
      t.strictSame([r.status, r.body['code']], [400, 'WEFT_ERR_API_REQUEST_INVALID'], `${what}: ${r.body['message']}`);
    }
    t.strictSame((await api(url(), 'DELETE', '/v1/intentions/web/api')).body, { deleted: true });
    t.equal(await consul.consul.kv.get('weft/intentions/web/api'), undefined, 'gone from KV');
    t.strictSame((await api(url(), 'DELETE', '/v1/intentions/web/api')).body, { deleted: false });
    t.strictSame(((await api(url(), 'GET', '/v1/intentions')).body['intentions'] as unknown[]).length, 1, 'the wildcard stays');
    // Written by hand, without the scheduler: proxies refuse it, and the API does not list it as in force.
    await consul.consul.kv.set('weft/intentions/evil/api', JSON.stringify({ action: 'allow' }));
    t.strictSame(((await api(url(), 'GET', '/v1/intentions')).body['intentions'] as Array<{ source: string }>).map((i) => i.source), ['*'], 'a hand-written intention is not listed');
    await consul.consul.kv.del('weft/intentions/evil/api');
  });

  await t.test('signing keys: agents read them; only the operator rotates; a rotation re-signs intentions and splits', async (t) => {
    await api(url(), 'PUT', '/v1/splits/api', { weights: { v1: 1, v2: 1 } });
    const before = await agentKeys();
    t.equal(before.keys.length, 1, 'one key on a first start');
    t.equal(before.keys[0]!.retireAt, undefined, 'the signing key has no retire time');
    const token = (await api(url(), 'POST', '/v1/nodes/h1/token')).body['token'] as string;
    const byAgent = await api(url(), 'POST', '/v1/signing/rotate', {}, token);
    t.strictSame([byAgent.status, byAgent.body['code']], [403, 'WEFT_ERR_API_FORBIDDEN'], 'an agent token may not rotate');
    const bad = await api(url(), 'POST', '/v1/signing/rotate', { overlapHours: -1 });
    t.strictSame([bad.status, bad.body['code'], bad.body['key']], [400, 'WEFT_ERR_API_REQUEST_INVALID', 'body.overlapHours'], 'a negative overlap is refused, naming the field');

    const r = await api(url(), 'POST', '/v1/signing/rotate', { overlapHours: 2, publishSeconds: 0 });
    t.equal(r.status, 200, r.text);
    const after = await agentKeys();
    t.equal(after.keys.length, 2, 'both keys published');
    const old = after.keys.find((k) => k.kid === before.keys[0]!.kid)!;
    t.ok(Math.abs(Date.parse(old.retireAt!) - Date.now() - 2 * 3_600_000) < 60_000, `the old key retires in 2 h (${old.retireAt})`);
    t.equal(after.keys.find((k) => k.kid === r.body['kid'])?.retireAt, undefined, 'the new key signs');
    t.ok((r.body['resigned'] as number) >= 2, `the split and the wildcard intention were re-signed (${r.body['resigned']})`);
    for (const key of ['weft/splits/api', 'weft/intentions/*/api']) {
      const kv = (await consul.consul.kv.get(key)) as { Value: string };
      t.equal((JSON.parse(kv.Value) as { kid: string }).kid, r.body['kid'], `${key} is signed by the new key`);
      t.ok(await admitted(key), `${key} verifies`);
    }
    t.strictSame((await api(url(), 'GET', '/v1/splits/api')).body, { service: 'api', weights: { v1: 1, v2: 1 } }, 'the content is unchanged');

    // The default: the next key is published first and signs only later, so every agent knows it before it meets it.
    const next = await api(url(), 'POST', '/v1/signing/rotate', {});
    t.equal(next.status, 200, next.text);
    t.ok(Math.abs(Date.parse(next.body['signsFrom'] as string) - Date.now() - 120_000) < 60_000, `it signs from ${next.body['signsFrom']} (scheduler.signing.publishSeconds)`);
    t.ok((await agentKeys()).keys.some((k) => k.kid === next.body['kid']), 'published at once');
    t.equal(next.body['resigned'], 0, 'nothing re-signed yet');
    await api(url(), 'PUT', '/v1/splits/api', { weights: { v1: 3, v2: 1 } });
    const kv = (await consul.consul.kv.get('weft/splits/api')) as { Value: string };
    t.equal((JSON.parse(kv.Value) as { kid: string }).kid, r.body['kid'], 'until then the key before it signs');
  });

  await t.test('purge: nothing left running', async (t) => {
    t.equal((await api(url(), 'DELETE', '/v1/jobs/web?purge=true')).status, 200);
    await eventually(async () => ((((await consul.consul.health.service({ service: 'api' })) as unknown[]).length === 0) ? true : undefined), 20_000, 'no instance left');
    t.pass('stopped');
  });
});
