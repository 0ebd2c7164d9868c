import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { resolveTarget, serviceOfHost } from '../../../proxy/outbound/target.js';

t.test('service names from Host headers', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['backend', 'backend'],
    ['backend:8080', 'backend'],
    ['Backend.weft', 'backend'],
    ['backend.weft.', 'backend'],
    ['backend.weft:80', 'backend'],
    ['a-b-1', 'a-b-1'],
    ['backend.example.com', undefined],
    ['10.0.0.1', undefined],
    ['[::1]:80', undefined],
    ['1234', undefined],
    ['-bad', undefined],
    ['backend:http', undefined],
    ['', undefined],
  ];
  for (const [host, want] of cases) t.equal(serviceOfHost(host), want, JSON.stringify(host));
});

const req = (method: string, url: string, host?: string) => ({ method, url, headers: host === undefined ? {} : { host } }) as unknown as IncomingMessage;

t.test('request targets: origin-form with Host, absolute-form (HTTP_PROXY), dedicated upstream, refusals', async (t) => {
  t.strictSame(resolveTarget(req('GET', '/x?y=1', 'backend')), { service: 'backend', path: '/x?y=1', host: 'backend' });
  t.strictSame(resolveTarget(req('GET', 'http://backend.weft:8080/x?y=1', 'ignored')), { service: 'backend', path: '/x?y=1', host: 'backend.weft:8080' });
  t.strictSame(resolveTarget(req('GET', '/x', 'localhost:9000'), 'payments'), { service: 'payments', path: '/x', host: 'localhost:9000' });
  t.match(resolveTarget(req('CONNECT', 'backend:443')), { error: /CONNECT is not supported/ });
  t.match(resolveTarget(req('GET', 'https://backend/')), { error: /only http:\/\// });
  t.match(resolveTarget(req('GET', '/x')), { error: /no Host header/ });
  t.match(resolveTarget(req('GET', 'http://[bad')), { error: /bad request target/ });
});
