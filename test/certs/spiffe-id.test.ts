import t from 'tap';
import { parseSpiffeId, serviceDnsName, spiffeId } from '../../certs/spiffe-id.js';

t.test('parseSpiffeId accepts weft workload IDs', async (t) => {
  const cases: Array<[string, [string, string, string]]> = [
    ['spiffe://weft.local/ns/default/svc/web', ['weft.local', 'default', 'web']],
    ['spiffe://prod-1.example_org/ns/team.a/svc/api-v2', ['prod-1.example_org', 'team.a', 'api-v2']],
    ['spiffe://td/ns/N1/svc/Web_API', ['td', 'N1', 'Web_API']],
  ];
  for (const [uri, [trustDomain, namespace, service]] of cases) {
    t.strictSame(parseSpiffeId(uri), { trustDomain, namespace, service, uri }, uri);
  }
});

t.test('parseSpiffeId refuses anything else with WEFT_ERR_SPIFFE_ID_INVALID', async (t) => {
  const bad = [
    '',
    'https://weft.local/ns/default/svc/web',
    'spiffe://weft.local',
    'spiffe://weft.local/',
    'spiffe://weft.local/ns/default',
    'spiffe://weft.local/ns/default/svc/',
    'spiffe://weft.local/ns/default/svc/web/extra',
    'spiffe://weft.local/svc/web/ns/default',
    'spiffe://Weft.Local/ns/default/svc/web',
    'spiffe://weft.local:8443/ns/default/svc/web',
    'spiffe://user@weft.local/ns/default/svc/web',
    'spiffe://weft.local/ns/default/svc/web?x=1',
    'spiffe://weft.local/ns/default/svc/web#frag',
    'spiffe://weft.local/ns/./svc/web',
    'spiffe://weft.local/ns/../svc/web',
    'spiffe://weft.local/ns/default/svc/we b',
    'spiffe://weft.local/ns/default/svc/web%2F',
    'SPIFFE://weft.local/ns/default/svc/web',
  ];
  for (const uri of bad) t.throws(() => parseSpiffeId(uri), { code: 'WEFT_ERR_SPIFFE_ID_INVALID' }, JSON.stringify(uri));
});

t.test('spiffeId names the bad part', async (t) => {
  t.throws(() => spiffeId('weft.local', 'default', 'bad name'), { code: 'WEFT_ERR_SPIFFE_ID_INVALID', key: 'service', value: 'bad name' });
  t.throws(() => spiffeId('UPPER', 'default', 'web'), { code: 'WEFT_ERR_SPIFFE_ID_INVALID', key: 'trustDomain' });
  t.throws(() => spiffeId('weft.local', '-x', 'web'), { code: 'WEFT_ERR_SPIFFE_ID_INVALID', key: 'namespace' });
});

t.test('serviceDnsName', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['web', 'web'],
    ['Web', 'web'],
    ['api-v2', 'api-v2'],
    ['a.b', 'a.b'],
    ['web_api', undefined],
    ['-web', undefined],
    ['web-', undefined],
    ['a'.repeat(63), 'a'.repeat(63)],
  ];
  for (const [service, want] of cases) t.equal(serviceDnsName(service), want, service);
});
