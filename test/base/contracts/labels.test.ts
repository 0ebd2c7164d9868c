import { Value } from '@sinclair/typebox/value';
import t from 'tap';
import { formatDuration, parseDuration } from '../../../base/duration.js';
import { type DecodeContext, decodeLabels, type Registration, RegistrationSchema, suggestLabel } from '../../../base/contracts/labels.js';

const DEFAULT_CHECK = { intervalMs: 10_000, timeoutMs: 2_000, failures: 3, successes: 1 };

/** A registration with the defaults, overridden by `over`. */
function reg(over: Partial<Registration> & { service: string; port: number }): Registration {
  return {
    weight: 1,
    version: 'latest',
    tags: [],
    check: { tcp: { port: over.port }, ...DEFAULT_CHECK },
    upstreams: [],
    ...over,
  };
}

interface GoodCase {
  name: string;
  labels: Record<string, string>;
  context?: DecodeContext;
  want: Registration;
  ignored?: string[];
}

const good: GoodCase[] = [
  {
    name: 'a short interval alone pulls the default timeout down with it',
    labels: { 'weft.service': 'api', 'weft.port': '8080', 'weft.check.interval': '1s' },
    want: { ...reg({ service: 'api', port: 8080 }), check: { ...reg({ service: 'api', port: 8080 }).check, intervalMs: 1000, timeoutMs: 1000 } },
  },
  {
    name: 'minimal weft labels get every default, a TCP check on the port included',
    labels: { 'weft.service': 'api', 'weft.port': '8080' },
    want: reg({ service: 'api', port: 8080 }),
  },
  {
    name: 'every weft label',
    labels: {
      'weft.service': 'payments',
      'weft.port': '9000',
      'weft.weight': '0',
      'weft.version': 'v2.1.0',
      'weft.tags': 'blue, canary ,, blue',
      'weft.check.http': '/healthz',
      'weft.check.tcp': '127.0.0.2:9001',
      'weft.check.interval': '1m30s',
      'weft.check.timeout': '500ms',
      'weft.check.failures': '5',
      'weft.check.successes': '2',
      'weft.upstreams': 'ledger:9100, users',
    },
    want: {
      service: 'payments',
      port: 9000,
      weight: 0,
      version: 'v2.1.0',
      tags: ['blue', 'canary'],
      check: { http: { path: '/healthz', tls: false }, tcp: { host: '127.0.0.2', port: 9001 }, intervalMs: 90_000, timeoutMs: 500, failures: 5, successes: 2 },
      upstreams: [{ service: 'ledger', localPort: 9100 }, { service: 'users' }],
    },
  },
  {
    name: 'an HTTP check alone replaces the default TCP check; absolute URLs are kept',
    labels: { 'weft.service': 'web', 'weft.port': '80', 'weft.check.http': 'https://127.0.0.1:8443/ready' },
    want: reg({ service: 'web', port: 80, check: { http: { url: 'https://127.0.0.1:8443/ready' }, ...DEFAULT_CHECK } }),
  },
  {
    name: 'weft.check.tcp=false with no HTTP check means no check at all',
    labels: { 'weft.service': 'batch', 'weft.port': '7000', 'weft.check.tcp': 'false' },
    want: reg({ service: 'batch', port: 7000, check: { ...DEFAULT_CHECK } }),
  },
  {
    name: 'weft.check.tcp as a bare port; values are trimmed',
    labels: { 'weft.service': ' api ', 'weft.port': ' 8080', 'weft.check.tcp': '8081' },
    want: reg({ service: 'api', port: 8080, check: { tcp: { port: 8081 }, ...DEFAULT_CHECK } }),
  },
  {
    name: 'Registrator: SERVICE_<port>_NAME gives name and port; port-scoped beats general; unknown SERVICE_* are reported as ignored',
    labels: {
      SERVICE_8080_NAME: 'shop',
      SERVICE_NAME: 'other',
      SERVICE_TAGS: 'general',
      SERVICE_8080_TAGS: 'scoped,x',
      SERVICE_CHECK_HTTP: '/health',
      SERVICE_CHECK_INTERVAL: '15s',
      SERVICE_CHECK_TIMEOUT: '3s',
      SERVICE_REGION: 'eu-west',
      'com.example.unrelated': 'yes',
    },
    want: reg({
      service: 'shop',
      port: 8080,
      tags: ['scoped', 'x'],
      check: { http: { path: '/health', tls: false }, intervalMs: 15_000, timeoutMs: 3_000, failures: 3, successes: 1 },
    }),
    ignored: ['SERVICE_REGION'],
  },
  {
    name: 'Registrator: SERVICE_NAME with the one exposed port; SERVICE_CHECK_HTTPS means an https probe',
    labels: { SERVICE_NAME: 'secure', SERVICE_CHECK_HTTPS: '/ping' },
    context: { exposedPorts: [8443] },
    want: reg({ service: 'secure', port: 8443, check: { http: { path: '/ping', tls: true }, ...DEFAULT_CHECK } }),
  },
  {
    name: 'weft.* wins over SERVICE_* for the same setting',
    labels: { 'weft.service': 'winner', SERVICE_NAME: 'loser', 'weft.port': '3000', SERVICE_TAGS: 'from-registrator', 'weft.tags': 'from-weft' },
    want: reg({ service: 'winner', port: 3000, tags: ['from-weft'] }),
  },
  {
    name: 'weft.port picks among SERVICE_<port>_* labels; the other ports are reported as ignored',
    labels: { 'weft.port': '443', SERVICE_80_NAME: 'plain', SERVICE_443_NAME: 'tls' },
    want: reg({ service: 'tls', port: 443 }),
    ignored: ['SERVICE_80_NAME'],
  },
  {
    name: 'a port ignored with SERVICE_<port>_IGNORE does not compete',
    labels: { SERVICE_80_IGNORE: 'true', SERVICE_443_NAME: 'tls' },
    want: reg({ service: 'tls', port: 443 }),
    ignored: ['SERVICE_80_IGNORE'],
  },
  {
    name: 'an exposed port ignored with SERVICE_<port>_IGNORE leaves the other one',
    labels: { SERVICE_NAME: 'app', SERVICE_80_IGNORE: 'yes' },
    context: { exposedPorts: [80, 8080] },
    want: reg({ service: 'app', port: 8080 }),
    ignored: ['SERVICE_80_IGNORE'],
  },
  {
    name: 'context supplies the name (image base name) and version (image tag)',
    labels: { 'weft.port': '5000' },
    context: { defaultName: 'registry', defaultVersion: '2.8.3' },
    want: reg({ service: 'registry', port: 5000, version: '2.8.3' }),
  },
  {
    name: 'the tag weft is never doubled by the label (the registry adds it)',
    labels: { 'weft.service': 'a', 'weft.port': '1', 'weft.tags': '' },
    want: reg({ service: 'a', port: 1 }),
  },
];

t.test('decodes good labels', async (t) => {
  for (const c of good) {
    const r = decodeLabels(c.labels, c.context);
    if (!r.ok) {
      t.fail(c.name, { errors: r.errors.map((e) => e.message) });
      continue;
    }
    t.strictSame(r.registration, c.want, c.name);
    t.strictSame(r.ignored, c.ignored ?? [], `${c.name}: ignored keys`);
    t.ok(Value.Check(RegistrationSchema, r.registration), `${c.name}: matches RegistrationSchema`);
  }
});

interface BadCase {
  name: string;
  labels: Record<string, string>;
  context?: DecodeContext;
  /** Every expected error: code, key, value (undefined for a missing label) and a fragment of the message. */
  errors: Array<[code: string, key: string, value: string | undefined, message: string]>;
}

const base = { 'weft.service': 'api', 'weft.port': '8080' };
const INVALID = 'WEFT_ERR_LABEL_INVALID';
const UNKNOWN = 'WEFT_ERR_LABEL_UNKNOWN';

const bad: BadCase[] = [
  { name: 'port with letters', labels: { ...base, 'weft.port': '80a' }, errors: [[INVALID, 'weft.port', '80a', 'weft.port: must be an integer 1-65535 (got "80a")']] },
  { name: 'port 0', labels: { ...base, 'weft.port': '0' }, errors: [[INVALID, 'weft.port', '0', 'integer 1-65535']] },
  { name: 'port too big', labels: { ...base, 'weft.port': '65536' }, errors: [[INVALID, 'weft.port', '65536', 'integer 1-65535']] },
  { name: 'negative port', labels: { ...base, 'weft.port': '-1' }, errors: [[INVALID, 'weft.port', '-1', 'integer 1-65535']] },
  { name: 'no port anywhere', labels: { 'weft.service': 'api' }, errors: [[INVALID, 'weft.port', undefined, 'weft.port: required']] },
  {
    name: 'several exposed ports and no label choosing one',
    labels: { 'weft.service': 'api' },
    context: { exposedPorts: [80, 443] },
    errors: [[INVALID, 'weft.port', undefined, 'exposes several ports (80, 443)']],
  },
  {
    name: 'two SERVICE_<port>_NAME labels',
    labels: { SERVICE_80_NAME: 'a', SERVICE_443_NAME: 'b' },
    errors: [[INVALID, 'weft.port', undefined, 'name several ports (80, 443)']],
  },
  { name: 'no service name', labels: { 'weft.port': '80' }, errors: [[INVALID, 'weft.service', undefined, 'required']] },
  { name: 'service name with capitals', labels: { ...base, 'weft.service': 'API' }, errors: [[INVALID, 'weft.service', 'API', 'DNS label']] },
  { name: 'service name with a dot', labels: { ...base, 'weft.service': 'a.b' }, errors: [[INVALID, 'weft.service', 'a.b', 'DNS label']] },
  { name: 'empty service name', labels: { ...base, 'weft.service': '' }, errors: [[INVALID, 'weft.service', '', 'DNS label']] },
  { name: 'bad SERVICE_NAME names the Registrator key', labels: { SERVICE_NAME: 'my_svc', 'weft.port': '1' }, errors: [[INVALID, 'SERVICE_NAME', 'my_svc', 'DNS label']] },
  {
    name: 'image name unusable as a service name',
    labels: { 'weft.port': '1' },
    context: { defaultName: 'My.Image' },
    errors: [[INVALID, 'weft.service', 'My.Image', 'derived from the image name']],
  },
  { name: 'weight above range', labels: { ...base, 'weft.weight': '65536' }, errors: [[INVALID, 'weft.weight', '65536', 'integer 0-65535']] },
  { name: 'fractional weight', labels: { ...base, 'weft.weight': '1.5' }, errors: [[INVALID, 'weft.weight', '1.5', 'integer 0-65535']] },
  { name: 'version with a space', labels: { ...base, 'weft.version': 'v 1' }, errors: [[INVALID, 'weft.version', 'v 1', 'letters, digits']] },
  { name: 'tag with a space', labels: { ...base, 'weft.tags': 'ok, not ok' }, errors: [[INVALID, 'weft.tags', 'not ok', 'without spaces']] },
  { name: 'relative check path', labels: { ...base, 'weft.check.http': 'healthz' }, errors: [[INVALID, 'weft.check.http', 'healthz', 'path starting with /']] },
  { name: 'non-http check URL', labels: { ...base, 'weft.check.http': 'ftp://x/y' }, errors: [[INVALID, 'weft.check.http', 'ftp://x/y', 'http(s):// URL']] },
  { name: 'empty check path', labels: { ...base, 'weft.check.http': '' }, errors: [[INVALID, 'weft.check.http', '', 'path starting with /']] },
  { name: 'tcp check yes', labels: { ...base, 'weft.check.tcp': 'yes' }, errors: [[INVALID, 'weft.check.tcp', 'yes', 'true, false, a port']] },
  { name: 'tcp check bad port', labels: { ...base, 'weft.check.tcp': 'db:99999' }, errors: [[INVALID, 'weft.check.tcp', 'db:99999', 'host:port']] },
  { name: 'interval without unit', labels: { ...base, 'weft.check.interval': '10' }, errors: [[INVALID, 'weft.check.interval', '10', 'duration like 500ms, 10s or 1m']] },
  { name: 'interval below 1s', labels: { ...base, 'weft.check.interval': '500ms' }, errors: [[INVALID, 'weft.check.interval', '500ms', 'from 1s to 1h']] },
  { name: 'interval above 1h', labels: { ...base, 'weft.check.interval': '2h' }, errors: [[INVALID, 'weft.check.interval', '2h', 'from 1s to 1h']] },
  { name: 'negative timeout', labels: { ...base, 'weft.check.timeout': '-1s' }, errors: [[INVALID, 'weft.check.timeout', '-1s', 'from 1ms to 1h']] },
  { name: 'zero timeout', labels: { ...base, 'weft.check.timeout': '0' }, errors: [[INVALID, 'weft.check.timeout', '0', 'from 1ms']] },
  { name: 'timeout above interval', labels: { ...base, 'weft.check.timeout': '20s' }, errors: [[INVALID, 'weft.check.timeout', '20s', 'must not exceed the check interval (10s)']] },
  { name: 'Registrator interval typo', labels: { ...base, SERVICE_CHECK_INTERVAL: '15' }, errors: [[INVALID, 'SERVICE_CHECK_INTERVAL', '15', 'duration like']] },
  { name: 'zero failures', labels: { ...base, 'weft.check.failures': '0' }, errors: [[INVALID, 'weft.check.failures', '0', 'integer 1-100']] },
  { name: 'successes not a number', labels: { ...base, 'weft.check.successes': 'two' }, errors: [[INVALID, 'weft.check.successes', 'two', 'integer 1-100']] },
  { name: 'upstream bad port', labels: { ...base, 'weft.upstreams': 'db:5432x' }, errors: [[INVALID, 'weft.upstreams', 'db:5432x', 'local port must be an integer 1-65535']] },
  { name: 'upstream bad name', labels: { ...base, 'weft.upstreams': 'Db' }, errors: [[INVALID, 'weft.upstreams', 'Db', 'service or service:localPort']] },
  { name: 'upstream twice', labels: { ...base, 'weft.upstreams': 'db:1,db:2' }, errors: [[INVALID, 'weft.upstreams', 'db:2', 'lists db twice']] },
  {
    name: 'upstream port clashes with weft.port',
    labels: { ...base, 'weft.upstreams': 'db:8080' },
    errors: [[INVALID, 'weft.upstreams', 'db:8080', 'already used by weft.port']],
  },
  { name: 'typo gets a suggestion', labels: { ...base, 'weft.prot': '80' }, errors: [[UNKNOWN, 'weft.prot', '80', 'did you mean weft.port?']] },
  { name: 'wrong case gets a suggestion', labels: { ...base, 'Weft.Service': 'x' }, errors: [[UNKNOWN, 'Weft.Service', 'x', 'did you mean weft.service?']] },
  { name: 'alias gets a suggestion', labels: { ...base, 'weft.name': 'x' }, errors: [[UNKNOWN, 'weft.name', 'x', 'did you mean weft.service?']] },
  { name: 'far-off key lists the known ones', labels: { ...base, 'weft.replicas': '3' }, errors: [[UNKNOWN, 'weft.replicas', '3', 'known: weft.service']] },
  {
    name: 'an unknown weft key alone is still an error, not a skip',
    labels: { 'weft.enable': 'true' },
    errors: [[UNKNOWN, 'weft.enable', 'true', 'unknown label']],
  },
  {
    name: 'all errors of a container are collected, not just the first',
    labels: {
      'weft.service': 'Bad_Name',
      'weft.port': '80a',
      'weft.weight': 'heavy',
      'weft.check.interval': 'soon',
      'weft.check.failures': '0',
      'weft.upstreams': 'ok:1,bad:0',
      'weft.chek.http': '/h',
    },
    errors: [
      [UNKNOWN, 'weft.chek.http', '/h', 'did you mean weft.check.http?'],
      [INVALID, 'weft.port', '80a', 'integer 1-65535'],
      [INVALID, 'weft.service', 'Bad_Name', 'DNS label'],
      [INVALID, 'weft.weight', 'heavy', 'integer 0-65535'],
      [INVALID, 'weft.check.interval', 'soon', 'duration like'],
      [INVALID, 'weft.check.failures', '0', 'integer 1-100'],
      [INVALID, 'weft.upstreams', 'bad:0', 'local port'],
    ],
  },
];

t.test('reports every bad label with its code, key and value', async (t) => {
  for (const c of bad) {
    const r = decodeLabels(c.labels, c.context);
    if (r.ok) {
      t.fail(`${c.name}: decoded although bad`);
      continue;
    }
    const got = r.errors.map((e) => [e.code, e.key, e.value as string | undefined]);
    t.strictSame(
      got,
      c.errors.map(([code, key, value]) => [code, key, value]),
      c.name,
    );
    c.errors.forEach(([, , , fragment], i) => {
      t.match(r.errors[i]?.message ?? '', fragment, `${c.name}: message names the problem`);
    });
  }
});

t.test('containers that are not weft services are skipped, not errors', async (t) => {
  t.strictSame(decodeLabels({}), { ok: true, registration: null, skipped: 'unlabelled', ignored: [] });
  t.strictSame(decodeLabels({ 'com.docker.compose.project': 'x' }), { ok: true, registration: null, skipped: 'unlabelled', ignored: [] });
  t.strictSame(decodeLabels({ SERVICE_IGNORE: 'true', SERVICE_NAME: 'x' }), { ok: true, registration: null, skipped: 'ignored', ignored: [] });
  t.strictSame(decodeLabels({ SERVICE_8080_NAME: 'x', SERVICE_8080_IGNORE: '1' }), { ok: true, registration: null, skipped: 'ignored', ignored: [] });
  const weftWins = decodeLabels({ SERVICE_IGNORE: 'true', 'weft.service': 'x', 'weft.port': '1' });
  t.ok(weftWins.ok && weftWins.registration !== null, 'weft.* labels override Registrator opt-out');
});

t.test('suggestions only for near misses', async (t) => {
  t.equal(suggestLabel('weft.check.intervall'), 'weft.check.interval');
  t.equal(suggestLabel('weft.upstream'), 'weft.upstreams');
  t.equal(suggestLabel('weft.cpu'), undefined);
});

t.test('Go durations', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['500ms', 500],
    ['10s', 10_000],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['2h', 7_200_000],
    ['0', 0],
    ['250us', 0.25],
    ['10', undefined],
    ['', undefined],
    ['s', undefined],
    ['1x', undefined],
    ['1s ', undefined],
    ['-1s', -1000], // as Go's time.ParseDuration; label ranges reject it
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, JSON.stringify(text));
  t.equal(formatDuration(10_000), '10s');
  t.equal(formatDuration(1500), '1500ms');
  t.equal(formatDuration(60_000), '1m');
  t.equal(formatDuration(7_200_000), '2h');
  t.equal(formatDuration(0), '0s');
});
