/**
 * The dev agent's ACL system: the rules engine as a table (rule sets x
 * requests), Consul's HTTP behaviour (tokens in three places, bootstrap once,
 * 403 texts, lists filtered by read permission, anonymous rules, persistence),
 * and weft's shipped policies (docs/acl/*.hcl) loaded into a running agent:
 * each component's token works within its grants and gets 403 outside them.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ANONYMOUS_TOKEN_ID, Authorizer, permissionDeniedText } from '../../../discovery/dev-agent/acl/authorizer.js';
import { type PolicyRules, parseJsonRules, parseRules, RulesError } from '../../../discovery/dev-agent/acl/rules.js';
import { createDiscoveryClient, fencedTxn, getJSON, putJSON, SessionLock } from '../../../discovery/index.js';
import { captureLogger } from '../../agent/helpers.js';
import { startTestConsul, type TeardownHost, type TestConsul } from '../../helpers/dev-consul.js';
import { aclCall, loadShippedPolicies, policyToken, shippedRules } from '../../integration/acl-tokens.js';

const ROOT = 'b1b2c3d4-0000-4000-8000-00000000a11d';

const json = (o: unknown): PolicyRules => parseJsonRules(JSON.stringify(o));

t.test('the rules engine, as a table: longest prefix, exact over prefix, deny wins at the same segment, the default policy', async (t) => {
  type Row = [what: string, policies: PolicyRules[], defaultAllow: boolean, resource: Parameters<Authorizer['allows']>[0], need: 'read' | 'list' | 'write', name: string, allowed: boolean];
  const prefixes = json({ key_prefix: { 'a/': { policy: 'read' }, 'a/b/': { policy: 'write' } } });
  const exactOverPrefix = json({ key: { 'a/secret': { policy: 'deny' } }, key_prefix: { 'a/': { policy: 'write' } } });
  const denyStops = json({ key_prefix: { '': { policy: 'write' }, 'private/': { policy: 'deny' } } });
  const list = json({ key_prefix: { 'l/': { policy: 'list' } } });
  const svc = json({ service_prefix: { '': { policy: 'read' } }, service: { 'weft-proxy': { policy: 'write' } }, node_prefix: { 'web-': { policy: 'write' } } });
  const misc = json({ session: { n1: { policy: 'write' } }, agent_prefix: { '': { policy: 'read' } }, event_prefix: { 'deploy-': { policy: 'write' } }, acl: 'read', operator: 'read' });
  const writeA = json({ key_prefix: { 'a/': { policy: 'write' } } });
  const denyA = json({ key_prefix: { 'a/': { policy: 'deny' } } });
  const readA = json({ key_prefix: { 'a/': { policy: 'read' } } });
  const rows: Row[] = [
    ['longest prefix: a/b/ write', [prefixes], false, 'key', 'write', 'a/b/c', true],
    ['longest prefix: a/ read only', [prefixes], false, 'key', 'write', 'a/c', false],
    ['longest prefix: a/ read', [prefixes], false, 'key', 'read', 'a/c', true],
    ['no rule, default deny', [prefixes], false, 'key', 'read', 'b', false],
    ['no rule, default allow', [prefixes], true, 'key', 'write', 'b', true],
    ['a rule beats the default: read under default allow is not write', [prefixes], true, 'key', 'write', 'a/x', false],
    ['exact rule beats a prefix rule', [exactOverPrefix], false, 'key', 'read', 'a/secret', false],
    ['the prefix still applies next to it', [exactOverPrefix], false, 'key', 'write', 'a/secret2', true],
    ['deny stops the search, whatever the default', [denyStops], true, 'key', 'read', 'private/x', false],
    ['a shorter write prefix still applies elsewhere', [denyStops], false, 'key', 'write', 'public/x', true],
    ['list grants read', [list], false, 'key', 'read', 'l/x', true],
    ['list grants list', [list], false, 'key', 'list', 'l/x', true],
    ['list does not grant write', [list], false, 'key', 'write', 'l/x', false],
    ['read does not grant list', [prefixes], false, 'key', 'list', 'a/x', false],
    ['same segment in two policies: deny wins', [writeA, denyA], false, 'key', 'read', 'a/x', false],
    ['same segment, deny first: deny still wins', [denyA, writeA], true, 'key', 'write', 'a/x', false],
    ['same segment read and write: the more permissive', [readA, writeA], false, 'key', 'write', 'a/x', true],
    ['service exact write', [svc], false, 'service', 'write', 'weft-proxy', true],
    ['service prefix read only', [svc], false, 'service', 'write', 'web', false],
    ['service prefix read', [svc], false, 'service', 'read', 'anything', true],
    ['node prefix', [svc], false, 'node', 'write', 'web-1', true],
    ['node outside the prefix', [svc], false, 'node', 'read', 'db-1', false],
    ['session exact', [misc], false, 'session', 'write', 'n1', true],
    ['session other node', [misc], false, 'session', 'write', 'n2', false],
    ['agent prefix read', [misc], false, 'agent', 'read', 'n1', true],
    ['agent prefix not write', [misc], false, 'agent', 'write', 'n1', false],
    ['event prefix', [misc], false, 'event', 'write', 'deploy-x', true],
    ['acl read', [misc], false, 'acl', 'read', '', true],
    ['acl read is not write', [misc], false, 'acl', 'write', '', false],
    ['operator read', [misc], false, 'operator', 'read', '', true],
    ['the default policy never grants acl', [], true, 'acl', 'read', '', false],
    ['default allow grants operator', [], true, 'operator', 'write', '', true],
  ];
  for (const [what, policies, defaultAllow, resource, need, name, allowed] of rows) {
    t.equal(Authorizer.of('x', policies, defaultAllow).allows(resource, need, name), allowed, what);
  }
  t.ok(Authorizer.manage('m').allows('acl', 'write'), 'a management token may do anything');
});

t.test("KeyWritePrefix: write on the prefix's rule and on every rule beneath it", async (t) => {
  const rules = json({ key_prefix: { '': { policy: 'write' }, 'x/ro/': { policy: 'read' } }, key: { 'y/locked': { policy: 'deny' } } });
  const a = Authorizer.of('x', [rules], false);
  t.ok(a.allowsKeyWritePrefix('z/'), 'nothing beneath');
  t.notOk(a.allowsKeyWritePrefix('x/'), 'a read prefix beneath');
  t.notOk(a.allowsKeyWritePrefix('y/'), 'a denied key beneath');
  t.ok(a.allowsKeyWritePrefix('x/rw/'), 'beside the read prefix');
  t.notOk(Authorizer.of('x', [], false).allowsKeyWritePrefix('a/'), 'no rule, default deny');
  t.ok(Authorizer.of('x', [], true).allowsKeyWritePrefix('a/'), 'no rule, default allow');
  t.notOk(Authorizer.of('x', [json({ key_prefix: { 'a/': { policy: 'read' } } })], true).allowsKeyWritePrefix('a/b/'), 'the parent rule grants read only');
});

t.test('rules parse from HCL and JSON alike; bad rules get Consul-style errors', async (t) => {
  const hcl = await parseRules('key_prefix "weft/" {\n  policy = "read"\n}\nservice "web" {\n  policy = "write"\n  intentions = "read"\n}\nacl = "read"\n');
  const fromJson = json({ key_prefix: { 'weft/': { policy: 'read' } }, service: { web: { policy: 'write', intentions: 'read' } }, acl: 'read' });
  t.strictSame(hcl, fromJson);
  t.strictSame(await parseRules(''), await parseRules('  '), 'empty rules are an empty policy');
  await t.rejects(parseRules('key_prefix "a" { policy = "bogus" }'), { message: 'Invalid key_prefix policy: &acl.KeyRule{Prefix:"a", Policy:"bogus"}' });
  await t.rejects(parseRules('service "a" { policy = "list" }'), { message: /^Invalid service policy: &acl\.ServiceRule\{Name:"a", Policy:"list"/ });
  await t.rejects(parseRules('acl = "admin"'), { message: 'Invalid acl policy: "admin"' });
  await t.rejects(parseRules('key_prefx "a" { policy = "read" }'), { message: /^Failed to parse ACL rules: unknown rule type "key_prefx"/ });
  await t.rejects(parseRules('key_prefix "a" { policy = }'), { message: /^Failed to parse ACL rules: / });
  t.throws(() => parseJsonRules('{"key": '), RulesError);
});

t.test("403 texts are Consul's", async (t) => {
  t.equal(
    permissionDeniedText(ANONYMOUS_TOKEN_ID, 'key', 'write', 'weft/allocs/h1/x'),
    `Permission denied: anonymous token lacks permission 'key:write' on "weft/allocs/h1/x". The anonymous token is used implicitly when a request does not specify a token.`,
  );
  t.equal(permissionDeniedText('abc', 'acl', 'read'), "Permission denied: token with AccessorID 'abc' lacks permission 'acl:read'");
});

/** Starts an agent with ACLs on and default deny; `initial` sets a management token. */
async function aclAgent(t: TeardownHost, initial?: string, defaultPolicy: 'allow' | 'deny' = 'deny'): Promise<TestConsul> {
  return startTestConsul(t, { acl: { enabled: true, defaultPolicy, ...(initial === undefined ? {} : { initialManagementToken: initial }) } });
}

t.test('HTTP: no token under default deny, bootstrap once, tokens in three places, 403 outside the grants', async (t) => {
  const c = await aclAgent(t);
  const a = c.address;

  const anon = await aclCall(a, 'PUT', '/v1/kv/app/x', { body: 'v' });
  t.equal(anon.status, 403);
  t.match(anon.text, /^Permission denied: anonymous token lacks permission 'key:write' on "app\/x"/);
  t.equal((await aclCall(a, 'GET', '/v1/kv/app/x')).status, 403, 'a single-key read without a token');
  const services = await aclCall(a, 'GET', '/v1/catalog/services');
  t.equal(services.status, 200, 'lists are filtered, not refused');
  t.strictSame(services.json, {}, 'the consul service is hidden from the anonymous token');
  t.equal(services.headers.get('x-consul-results-filtered-by-acls'), 'true');
  t.equal(services.headers.get('x-consul-default-acl-policy'), 'deny');
  t.equal((await aclCall(a, 'GET', '/v1/status/leader')).status, 200, 'status needs no token');

  const boot = await aclCall(a, 'PUT', '/v1/acl/bootstrap');
  t.equal(boot.status, 200, boot.text);
  const mgmt = (boot.json as { SecretID: string; ID: string }).SecretID;
  t.equal((boot.json as { ID: string }).ID, mgmt, 'ID repeats the SecretID, as Consul answers');
  t.match(boot.json, { Description: 'Bootstrap Token (Global Management)', Policies: [{ ID: '00000000-0000-0000-0000-000000000001', Name: 'global-management' }] });
  const again = await aclCall(a, 'PUT', '/v1/acl/bootstrap');
  t.equal(again.status, 403);
  t.match(again.text, /^Permission denied: ACL bootstrap no longer allowed \(reset index: \d+\)$/);

  t.equal((await aclCall(a, 'PUT', '/v1/kv/app/x', { body: 'v', token: mgmt })).status, 200, 'X-Consul-Token');
  t.equal((await aclCall(a, 'GET', '/v1/kv/app/x', { token: mgmt, header: 'bearer' })).status, 200, 'Authorization: Bearer');
  t.equal((await aclCall(a, 'GET', '/v1/kv/app/x', { token: mgmt, header: 'query' })).status, 200, '?token=');
  const bogus = await aclCall(a, 'GET', '/v1/kv/app/x', { token: 'no-such-secret' });
  t.equal(bogus.status, 403);
  t.equal(bogus.text, 'ACL not found');

  const token = await policyToken(a, mgmt, 'app-reader', 'key_prefix "app/" {\n  policy = "read"\n}\nkey_prefix "app/mine/" {\n  policy = "write"\n}\nkey "app/secret" {\n  policy = "deny"\n}\n');
  await aclCall(a, 'PUT', '/v1/kv/app/secret', { body: 's', token: mgmt });
  await aclCall(a, 'PUT', '/v1/kv/other/y', { body: 'o', token: mgmt });
  t.equal((await aclCall(a, 'PUT', '/v1/kv/app/mine/1', { body: '1', token })).status, 200, 'within its grants');
  const outside = await aclCall(a, 'PUT', '/v1/kv/app/x', { body: 'w', token });
  t.equal(outside.status, 403);
  t.match(outside.text, /^Permission denied: token with AccessorID '[0-9a-f-]{36}' lacks permission 'key:write' on "app\/x"$/);
  t.equal((await aclCall(a, 'GET', '/v1/kv/app/secret', { token })).status, 403, 'an exact deny beats the read prefix');
  const tree = await aclCall(a, 'GET', '/v1/kv/?recurse', { token });
  t.strictSame(
    (tree.json as Array<{ Key: string }>).map((e) => e.Key),
    ['app/mine/1', 'app/x'],
    'a recursive read holds only readable keys',
  );
  t.equal(tree.headers.get('x-consul-results-filtered-by-acls'), 'true');
  t.strictSame((await aclCall(a, 'GET', '/v1/kv/app/?keys&separator=/', { token })).json, ['app/mine/', 'app/x']);
  t.equal((await aclCall(a, 'GET', '/v1/kv/other/?recurse', { token })).status, 404, 'a list filtered to nothing is a 404, as in Consul');
  t.equal((await aclCall(a, 'DELETE', '/v1/kv/app/mine/?recurse', { token })).status, 200, 'a recursive delete with write on everything beneath');
  t.equal((await aclCall(a, 'DELETE', '/v1/kv/app/?recurse', { token })).status, 403, 'a recursive delete over a read-only prefix');
  const txn = await aclCall(a, 'PUT', '/v1/txn', {
    token,
    body: [{ KV: { Verb: 'set', Key: 'app/mine/2', Value: 'eA==' } }, { KV: { Verb: 'set', Key: 'other/z', Value: 'eA==' } }],
  });
  t.equal(txn.status, 409);
  t.match(txn.json, { Results: null, Errors: [{ OpIndex: 1, What: /lacks permission 'key:write' on "other\/z"/ }] });
  t.equal((await aclCall(a, 'GET', '/v1/kv/app/mine/2', { token })).status, 404, 'nothing of the refused transaction was applied');
  const reads = await aclCall(a, 'PUT', '/v1/txn', { token, body: [{ KV: { Verb: 'get-tree', Key: '' } }] });
  t.strictSame(
    (reads.json as { Results: Array<{ KV: { Key: string } }> }).Results.map((r) => r.KV.Key),
    ['app/x'],
    'txn reads are filtered too',
  );

  const self = await aclCall(a, 'GET', '/v1/acl/token/self', { token });
  t.match(self.json, { Description: 'app-reader', Policies: [{ Name: 'app-reader' }] });
  t.equal((await aclCall(a, 'GET', '/v1/acl/tokens', { token })).status, 403, 'listing tokens needs acl:read');
  t.match((await aclCall(a, 'GET', '/v1/acl/policies', { token })).text, /lacks permission 'acl:read'$/);
  t.equal((await aclCall(a, 'PUT', '/v1/acl/token', { token, body: { Policies: [{ Name: 'app-reader' }] } })).status, 403, 'a token cannot mint tokens');

  const aclReader = await policyToken(a, mgmt, 'acl-reader', 'acl = "read"');
  const listed = (await aclCall(a, 'GET', '/v1/acl/tokens', { token: aclReader })).json as Array<{ SecretID: string; Description: string }>;
  t.ok(
    listed.every((x) => x.SecretID === '<hidden>'),
    'acl:read sees tokens, not their secrets',
  );
  t.ok((await aclCall(a, 'GET', '/v1/acl/tokens', { token: mgmt })).text.includes(token), 'the management token sees them');
});

t.test('anonymous read rules: a policy on the anonymous token opens reads without a token, never writes', async (t) => {
  const c = await aclAgent(t, ROOT);
  const a = c.address;
  await aclCall(a, 'PUT', '/v1/kv/public/motd', { body: 'hello', token: ROOT });
  await aclCall(a, 'PUT', '/v1/acl/policy', { token: ROOT, body: { Name: 'anon-read', Rules: '{"key_prefix": {"public/": {"policy": "read"}}, "service_prefix": {"": {"policy": "read"}}, "node_prefix": {"": {"policy": "read"}}}' } });
  const upd = await aclCall(a, 'PUT', `/v1/acl/token/${ANONYMOUS_TOKEN_ID}`, { token: ROOT, body: { Description: 'Anonymous Token', Policies: [{ Name: 'anon-read' }] } });
  t.equal(upd.status, 200, upd.text);
  t.equal((await aclCall(a, 'GET', '/v1/kv/public/motd?raw')).text, 'hello');
  t.equal((await aclCall(a, 'PUT', '/v1/kv/public/motd', { body: 'x' })).status, 403);
  t.match((await aclCall(a, 'GET', '/v1/catalog/services')).json, { consul: [] }, 'the catalog, now readable');
  t.equal((await aclCall(a, 'DELETE', `/v1/acl/token/${ANONYMOUS_TOKEN_ID}`, { token: ROOT })).status, 500, 'the anonymous token cannot be deleted');
});

t.test('initial management token, persistence across a restart, the bootstrap reset file, ACLs off', async (t) => {
  const c = await aclAgent(t, ROOT);
  t.equal((await aclCall(c.address, 'PUT', '/v1/acl/bootstrap')).status, 403, 'the configured management token counts as the bootstrap');
  const token = await policyToken(c.address, ROOT, 'kv-writer', 'key_prefix "" { policy = "write" }');
  t.equal((await aclCall(c.address, 'PUT', '/v1/kv/k', { body: 'v', token })).status, 200);
  await c.agent.flush();
  // The snapshot and the change log after it (discovery/dev-agent/README.md, persistence).
  const files = ['state.json', 'state.log'].map((f) => join(c.dataDir, f));
  const texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
  t.ok(texts.join('').includes(token), 'the state files hold the SecretIDs');
  for (const f of files) t.equal((await stat(f)).mode & 0o777, 0o600, `so only its owner may read ${f}`);

  const c2 = await c.restart();
  t.equal((await aclCall(c2.address, 'GET', '/v1/kv/k?raw', { token })).text, 'v', 'tokens and policies survive a restart');
  const refused = await aclCall(c2.address, 'PUT', '/v1/acl/bootstrap');
  t.equal(refused.status, 403, 'bootstrap stays done');
  const resetIndex = /reset index: (\d+)/.exec(refused.text)![1]!;
  await writeFile(join(c2.dataDir, 'acl-bootstrap-reset'), `${resetIndex}\n`);
  const reboot = await aclCall(c2.address, 'PUT', '/v1/acl/bootstrap');
  t.equal(reboot.status, 200, `a reset file with the reset index allows one more bootstrap: ${reboot.text}`);
  t.equal((await aclCall(c2.address, 'PUT', '/v1/acl/bootstrap')).status, 403, 'and only one');

  const off = await startTestConsul(t);
  const disabled = await aclCall(off.address, 'PUT', '/v1/acl/bootstrap');
  t.equal(disabled.status, 401);
  t.equal(disabled.text, 'ACL support disabled');
  t.equal((await aclCall(off.address, 'PUT', '/v1/kv/k', { body: 'v', token: 'anything' })).status, 200, 'without ACLs tokens are ignored');
});

t.test('policy and token validation answers with Consul-style errors', async (t) => {
  const c = await aclAgent(t, ROOT);
  const a = c.address;
  const bad = await aclCall(a, 'PUT', '/v1/acl/policy', { token: ROOT, body: { Name: 'bad', Rules: 'key_prefix "a" { policy = "bogus" }' } });
  t.equal(bad.status, 500);
  t.match(bad.text, /^Invalid key_prefix policy: /);
  await aclCall(a, 'PUT', '/v1/acl/policy', { token: ROOT, body: { Name: 'dup', Rules: '' } });
  t.equal((await aclCall(a, 'PUT', '/v1/acl/policy', { token: ROOT, body: { Name: 'dup', Rules: '' } })).text, 'Invalid Policy: A Policy with Name "dup" already exists');
  t.equal((await aclCall(a, 'PUT', '/v1/acl/token', { token: ROOT, body: { Policies: [{ Name: 'nope' }] } })).text, 'No such ACL policy with name "nope"');
  t.equal((await aclCall(a, 'PUT', '/v1/acl/token', { token: ROOT, body: { ExpirationTTL: '1h' } })).status, 400, 'unsupported token fields are refused, not ignored');
  t.equal((await aclCall(a, 'GET', '/v1/acl/policy/name/nope', { token: ROOT })).status, 404);
  t.equal((await aclCall(a, 'DELETE', '/v1/acl/policy/00000000-0000-0000-0000-000000000001', { token: ROOT })).status, 500, 'the builtin policy stays');
});

t.test('every route of the dev agent has an ACL rule', async (t) => {
  const { logger, lines } = captureLogger();
  await startTestConsul(t, { logger, acl: { enabled: true, defaultPolicy: 'deny', initialManagementToken: ROOT } });
  t.strictSame(
    lines.filter((l) => String(l['msg']).includes('has no ACL rule')).map((l) => `${l['method']} ${l['url']}`),
    [],
  );
});

t.test("weft's shipped policies: each component's token works within its grants and gets 403 outside them", async (t) => {
  const c = await aclAgent(t, ROOT);
  const a = c.address;
  const tokens = await loadShippedPolicies(a, ROOT, ['h1', 'h2']);
  const put = async (key: string, token: string): Promise<number> => (await aclCall(a, 'PUT', `/v1/kv/${key}`, { body: '{}', token })).status;
  const register = async (name: string, token: string): Promise<number> => (await aclCall(a, 'PUT', '/v1/agent/service/register', { token, body: { Name: name, ID: `${name}-1`, Port: 8080 } })).status;
  await put('weft/allocs/h1/a1', tokens.scheduler);
  await put('weft/allocs/h2/a2', tokens.scheduler);
  await put('weft/splits/web', tokens.scheduler);
  t.equal(await register('web', tokens.agents['h1']!), 200, 'the agent registers workloads under any name');

  await t.test('proxy: reads routing state, registers only weft-proxy, writes no KV', async (t) => {
    const p = tokens.proxy;
    t.equal(await put('weft/allocs/h1/evil', p), 403, 'cannot write weft/allocs/');
    t.equal(await put('weft/intentions/a/b', p), 403, 'cannot write intentions');
    t.equal(await put('weft/splits/web', p), 403, 'cannot write splits');
    t.equal((await aclCall(a, 'GET', '/v1/kv/weft/splits/web', { token: p })).status, 200, 'reads splits');
    t.equal((await aclCall(a, 'GET', '/v1/kv/weft/allocs/h1/a1', { token: p })).status, 403, 'cannot read allocations');
    t.equal(await register('weft-proxy', p), 200, 'registers weft-proxy');
    t.equal(await register('web', p), 403, 'but no other service');
    const health = await aclCall(a, 'GET', '/v1/health/service/web', { token: p });
    t.equal((health.json as unknown[]).length, 1, 'watches the health of every service');
  });

  await t.test("agent: reads its own allocations, reports its own status, cannot plant allocations or intentions", async (t) => {
    const h1 = tokens.agents['h1']!;
    t.equal(await put('weft/intentions/a/b', h1), 403, 'cannot write weft/intentions/');
    t.equal(await put('weft/allocs/h1/evil', h1), 403, 'cannot write an allocation, not even for its own host');
    t.equal(await put('weft/alloc-status/h1/a1', h1), 200, 'reports its own status');
    t.equal(await put('weft/alloc-status/h2/a2', h1), 403, "not another host's");
    const own = await aclCall(a, 'GET', '/v1/kv/weft/allocs/h1/?recurse', { token: h1 });
    t.strictSame((own.json as Array<{ Key: string }>).map((e) => e.Key), ['weft/allocs/h1/a1']);
    t.equal((await aclCall(a, 'GET', '/v1/kv/weft/allocs/?recurse', { token: h1 })).headers.get('x-consul-results-filtered-by-acls'), 'true', "another host's allocations are filtered out");
    t.equal((await aclCall(a, 'GET', '/v1/kv/weft/allocs/h2/?recurse', { token: h1 })).status, 404);
    t.equal((await aclCall(a, 'GET', '/v1/kv/weft/secrets/x', { token: h1 })).status, 403, 'no secrets, not even sealed');
  });

  await t.test('prometheus: reads the catalog and health, writes nothing', async (t) => {
    const p = tokens.prometheus;
    t.match((await aclCall(a, 'GET', '/v1/catalog/services', { token: p })).json, { consul: [], web: [] });
    t.equal((await aclCall(a, 'GET', '/v1/agent/self', { token: p })).status, 200, 'agent/self, which consul_sd asks for the datacenter');
    t.equal(((await aclCall(a, 'GET', '/v1/weft/prometheus-sd?service=web', { token: p, header: 'bearer' })).json as unknown[]).length, 1, "weft's HTTP SD, with a Bearer token");
    t.equal(((await aclCall(a, 'GET', '/v1/weft/prometheus-sd?service=web')).json as unknown[]).length, 0, 'without a token HTTP SD sees nothing');
    t.equal(await put('weft/anything', p), 403);
    t.equal((await aclCall(a, 'GET', '/v1/kv/weft/splits/web', { token: p })).status, 403, 'no KV reads either');
    t.equal(await register('web', p), 403);
    t.equal((await aclCall(a, 'PUT', '/v1/session/create', { token: p, body: {} })).status, 403);
    t.equal((await aclCall(a, 'PUT', '/v1/event/fire/x', { token: p })).status, 403);
    t.equal((await aclCall(a, 'PUT', '/v1/txn', { token: p, body: [{ KV: { Verb: 'set', Key: 'weft/x', Value: 'eA==' } }] })).status, 409);
  });

  await t.test('scheduler: the leader lock, fenced writes of allocations, secrets; not the CA bundle', async (t) => {
    const client = createDiscoveryClient({ consul: { address: a, token: tokens.scheduler } });
    t.teardown(() => client.close());
    const lock = new SessionLock(client, { ttlMs: 1000, lockDelayMs: 0, name: 'weft scheduler test', value: { address: 'x' } });
    t.teardown(() => lock.close());
    await lock.waitForLock(AbortSignal.timeout(10_000));
    await fencedTxn(client, lock.fence(), [
      { verb: 'set', key: 'weft/allocs/h1/a3', value: { id: 'a3' } },
      { verb: 'delete-tree', key: 'weft/allocs/h2/' },
    ]);
    t.match((await getJSON(client, 'weft/allocs/h1/a3'))?.value, { id: 'a3' });
    t.ok(await putJSON(client, 'weft/secrets/db', { sealed: true }));
    t.equal(await put('weft/ca/roots', tokens.scheduler), 403, 'the CA bundle is published by the operator (weft ca publish), not the scheduler');
    t.equal(await register('weft-scheduler', tokens.scheduler), 200);
    t.equal(await register('web', tokens.scheduler), 403);
  });
});

t.test('the shipped policy files parse', async (t) => {
  for (const name of ['agent', 'proxy', 'scheduler', 'prometheus'] as const) {
    const rules = await parseRules(shippedRules(name, 'h1'));
    t.ok(Object.values(rules.segments).some((r) => r.length > 0), name);
  }
});
