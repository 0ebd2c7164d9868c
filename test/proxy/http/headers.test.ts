import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { compileRequestPolicy, connectionNominated, downstreamResponseHeaders, upstreamRequestHeaders } from '../../../proxy/http/headers.js';

const req = (headers: Record<string, string | string[]>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

t.test('Connection tokens name extra hop-by-hop headers; common values name none', async (t) => {
  t.equal(connectionNominated(undefined), undefined);
  t.equal(connectionNominated('keep-alive'), undefined);
  t.equal(connectionNominated('Close'), undefined);
  t.strictSame([...(connectionNominated('close, X-Secret ,x-other,host') ?? [])], ['close', 'x-secret', 'x-other'], 'host is protected');
});

t.test('hop-by-hop and Connection-named headers are not forwarded', async (t) => {
  const policy = compileRequestPolicy({ trustForwarded: false, proto: 'http', drop: ['X-Weft-Instance'] });
  const out = upstreamRequestHeaders(
    req({
      host: 'api',
      connection: 'keep-alive, x-secret',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic x',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x-sum',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'x-secret': 'drop me',
      'x-weft-instance': 'h1-a',
      accept: 'text/plain',
    }),
    policy,
    '127.0.0.9',
  );
  t.strictSame(out, { host: 'api', accept: 'text/plain', 'x-forwarded-for': '127.0.0.9', 'x-forwarded-proto': 'http' });
});

t.test('X-Forwarded-* from untrusted callers are overwritten, with Forwarded and X-Real-IP dropped', async (t) => {
  const policy = compileRequestPolicy({ trustForwarded: false, proto: 'http' });
  const out = upstreamRequestHeaders(
    req({ 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', 'x-forwarded-host': 'evil' }),
    policy,
    '127.0.0.5',
  );
  t.strictSame(out, { 'x-forwarded-for': '127.0.0.5', 'x-forwarded-proto': 'http' });
});

t.test('trusted callers are appended to, and their proto kept', async (t) => {
  const policy = compileRequestPolicy({ trustForwarded: true, proto: 'https' });
  t.strictSame(upstreamRequestHeaders(req({ 'x-forwarded-for': '127.0.0.5', 'x-forwarded-proto': 'http' }), policy, '127.0.0.2'), {
    'x-forwarded-for': '127.0.0.5, 127.0.0.2',
    'x-forwarded-proto': 'http',
  });
  t.strictSame(upstreamRequestHeaders(req({}), policy, '127.0.0.2'), { 'x-forwarded-for': '127.0.0.2', 'x-forwarded-proto': 'https' });
});

t.test('responses lose hop-by-hop headers and keep the rest, Set-Cookie arrays included', async (t) => {
  t.strictSame(
    downstreamResponseHeaders({
      'transfer-encoding': 'chunked',
      connection: 'keep-alive, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    }),
    { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' },
  );
});
