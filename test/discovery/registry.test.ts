/** The registration contract on the wire, and reading health entries back (pure; the round trip is in consul.test.ts). */
import t from 'tap';
import { decodeLabels, type Registration } from '../../base/contracts/labels.js';
import { buildServiceRegistration, type HealthEntry, parseHealthEntries, parseHealthEntry, serviceId } from '../../discovery/registry.js';

function registration(labels: Record<string, string>): Registration {
  const r = decodeLabels(labels);
  if (!r.ok || r.registration === null) throw new Error('test labels must decode');
  return r.registration;
}

t.test('the service definition follows the contract', async (t) => {
  const body = buildServiceRegistration({
    host: 'node-2',
    hostAddress: '127.0.0.2',
    instance: 'web-7f3a',
    meshPort: 15443,
    registration: registration({
      'weft.service': 'web',
      'weft.port': '8080',
      'weft.weight': '5',
      'weft.version': 'v2',
      'weft.tags': 'canary,weft',
      'weft.check.http': '/healthz',
      'weft.check.tcp': 'true',
      'weft.check.interval': '5s',
      'weft.check.timeout': '1s',
      'weft.check.failures': '2',
      'weft.check.successes': '3',
    }),
  });
  t.strictSame(body, {
    id: 'node-2-web-7f3a',
    name: 'web',
    address: '127.0.0.2',
    port: 8080,
    tags: ['weft', 'canary'],
    meta: { weft_host: 'node-2', weft_instance: 'web-7f3a', weft_version: 'v2', weft_weight: '5', weft_mesh_port: '15443' },
    checks: [
      {
        checkid: 'service:node-2-web-7f3a:http',
        name: 'web HTTP http://127.0.0.2:8080/healthz',
        http: 'http://127.0.0.2:8080/healthz',
        interval: '5s',
        timeout: '1s',
        successbeforepassing: 3,
        failuresbeforecritical: 2,
        deregistercriticalserviceafter: '1m',
      },
      {
        checkid: 'service:node-2-web-7f3a:tcp',
        name: 'web TCP 127.0.0.2:8080',
        tcp: '127.0.0.2:8080',
        interval: '5s',
        timeout: '1s',
        successbeforepassing: 3,
        failuresbeforecritical: 2,
        deregistercriticalserviceafter: '1m',
      },
    ],
  });
});

t.test('https paths, IPv6 addresses, explicit TCP targets, a custom reap time', async (t) => {
  const body = buildServiceRegistration({
    host: 'h',
    hostAddress: '::1',
    instance: 'i',
    meshPort: 1,
    deregisterCriticalAfterMs: 90_000,
    registration: registration({ SERVICE_NAME: 's', 'weft.port': '443', SERVICE_CHECK_HTTPS: '/ok', 'weft.check.tcp': 'db:5432' }),
  });
  t.match(body.checks, [
    { http: 'https://[::1]:443/ok', deregistercriticalserviceafter: '90s' },
    { tcp: 'db:5432', deregistercriticalserviceafter: '90s' },
  ]);
  t.equal(serviceId('h', 'i'), 'h-i');
});

const entry = (over: { Meta?: Record<string, string>; Address?: string; Checks?: Array<{ Status: string }> } = {}): HealthEntry => ({
  Node: { Node: 'node-2', Address: '127.0.0.9' },
  Service: {
    ID: 'node-2-web-1',
    Service: 'web',
    Address: over.Address ?? '127.0.0.2',
    Port: 8080,
    Tags: ['weft', 'canary'],
    Meta: over.Meta ?? { weft_host: 'node-2', weft_instance: 'web-1', weft_version: 'v2', weft_weight: '5', weft_mesh_port: '15443' },
  },
  Checks: over.Checks ?? [{ Status: 'passing' }, { Status: 'passing' }],
});

t.test('health entries read back into Instances', async (t) => {
  t.strictSame(parseHealthEntry(entry()), {
    id: 'node-2-web-1',
    service: 'web',
    host: 'node-2',
    address: '127.0.0.2',
    port: 8080,
    version: 'v2',
    weight: 5,
    meshPort: 15443,
    tags: ['weft', 'canary'],
    healthy: true,
  });
  t.match(parseHealthEntry(entry({ Checks: [{ Status: 'passing' }, { Status: 'warning' }] })), { healthy: false });
  t.match(
    parseHealthEntry(entry({ Meta: {}, Address: '' })),
    { host: 'node-2', address: '127.0.0.9', weight: 1, version: undefined, meshPort: undefined },
    'a non-weft registration: node address, weight 1, no mesh port',
  );
  t.throws(() => parseHealthEntry(entry({ Meta: { weft_weight: 'heavy' } })), {
    code: 'WEFT_ERR_WEIGHT_INVALID',
    key: 'node-2-web-1: Meta.weft_weight',
    value: 'heavy',
  });
  t.throws(() => parseHealthEntry(entry({ Meta: { weft_mesh_port: '0' } })), {
    code: 'WEFT_ERR_INSTANCE_INVALID',
    key: 'node-2-web-1: Meta.weft_mesh_port',
    value: '0',
  });
  t.throws(() => parseHealthEntry({ Service: null }), { code: 'WEFT_ERR_INSTANCE_INVALID' });
});

t.test('one bad entry is skipped (and logged), the others stay, sorted by ID', async (t) => {
  const warnings: unknown[] = [];
  const logger = { warn: (o: unknown) => warnings.push(o) } as unknown as import('../../base/log.js').Logger;
  const b = entry();
  b.Service = { ...b.Service!, ID: 'node-1-web-1' };
  const list = parseHealthEntries([entry(), entry({ Meta: { weft_weight: '-1' } }), b], logger);
  t.strictSame(
    list.map((i) => i.id),
    ['node-1-web-1', 'node-2-web-1'],
  );
  t.equal(warnings.length, 1);
});
