import t from 'tap';
import { Framing, headerValue, requestFraming, requestLines, responseFraming, responseLines } from '../../../proxy/h1/head.js';
import { compileRequestPolicy, connectionNominated } from '../../../proxy/http/headers.js';

/** Header lines as [name, value] pairs, for comparing without caring about the string layout. */
const pairs = (lines: string): Array<[string, string]> =>
  lines
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => {
      const i = l.indexOf(': ');
      return [l.slice(0, i), l.slice(i + 2)];
    });

t.test('Connection tokens name extra hop-by-hop headers; common values name none', async (t) => {
  t.equal(connectionNominated(undefined), undefined);
  t.equal(connectionNominated('keep-alive'), undefined);
  t.equal(connectionNominated('Close'), undefined);
  t.strictSame([...(connectionNominated('close, X-Secret ,x-other,host') ?? [])], ['close', 'x-secret', 'x-other'], 'host is protected');
});

t.test('hop-by-hop and Connection-named headers are not forwarded; names keep their case', async (t) => {
  const policy = compileRequestPolicy({ trustForwarded: false, proto: 'http', drop: ['X-Weft-Instance'] });
  const lines = requestLines(
    [
      'Host', 'api',
      'Connection', 'keep-alive, x-secret',
      'Keep-Alive', 'timeout=5',
      'Proxy-Authorization', 'Basic x',
      'Proxy-Connection', 'keep-alive',
      'TE', 'trailers',
      'Trailer', 'x-sum',
      'Transfer-Encoding', 'chunked',
      'Upgrade', 'h2c',
      'X-Secret', 'drop me',
      'x-weft-instance', 'h1-a',
      'Accept', 'text/plain',
      'Content-Length', '3',
    ],
    policy,
    '127.0.0.9',
  );
  // Host and framing are written by the caller of requestLines (the target's Host, the body's framing).
  t.strictSame(pairs(lines), [
    ['Accept', 'text/plain'],
    ['x-forwarded-for', '127.0.0.9'],
    ['x-forwarded-proto', 'http'],
  ]);
});

t.test('X-Forwarded-* from untrusted callers are overwritten, with Forwarded and X-Real-IP dropped', async (t) => {
  const policy = compileRequestPolicy({ trustForwarded: false, proto: 'http' });
  const lines = requestLines(
    ['X-Forwarded-For', '6.6.6.6', 'x-forwarded-proto', 'https', 'Forwarded', 'for=6.6.6.6', 'X-Real-IP', '6.6.6.6', 'X-Forwarded-Host', 'evil'],
    policy,
    '127.0.0.5',
  );
  t.strictSame(pairs(lines), [
    ['x-forwarded-for', '127.0.0.5'],
    ['x-forwarded-proto', 'http'],
  ]);
});

t.test('trusted callers are appended to, and their proto kept', async (t) => {
  const policy = compileRequestPolicy({ trustForwarded: true, proto: 'https' });
  t.strictSame(pairs(requestLines(['X-Forwarded-For', '127.0.0.5', 'X-Forwarded-Proto', 'http'], policy, '127.0.0.2')), [
    ['x-forwarded-for', '127.0.0.5, 127.0.0.2'],
    ['x-forwarded-proto', 'http'],
  ]);
  t.strictSame(pairs(requestLines([], policy, '127.0.0.2')), [
    ['x-forwarded-for', '127.0.0.2'],
    ['x-forwarded-proto', 'https'],
  ]);
});

t.test('responses lose hop-by-hop and framing headers and keep the rest, repeated Set-Cookie included', async (t) => {
  const lines = responseLines([
    'Transfer-Encoding', 'chunked',
    'Connection', 'keep-alive, x-hop',
    'x-hop', '1',
    'Keep-Alive', 'timeout=5',
    'Set-Cookie', 'a=1',
    'Set-Cookie', 'b=2',
    'Content-Type', 'text/plain',
  ]);
  t.strictSame(pairs(lines), [
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['Content-Type', 'text/plain'],
  ]);
});

t.test('framing: what the proxy writes for a request and a response', async (t) => {
  t.strictSame(requestFraming(['Content-Length', '12']), { framing: Framing.Length, length: 12 });
  t.strictSame(requestFraming(['Content-Length', '0']), { framing: Framing.None, length: 0 });
  t.strictSame(requestFraming(['transfer-encoding', 'chunked']), { framing: Framing.Chunked, length: -1 });
  t.strictSame(requestFraming(['Host', 'x']), { framing: Framing.None, length: 0 });
  t.equal(responseFraming(['Content-Length', '5'], 200, false).framing, Framing.Length);
  t.equal(responseFraming(['Content-Length', '5'], 200, true).framing, Framing.None, 'HEAD: no body whatever is declared');
  t.equal(responseFraming(['Content-Length', '5'], 200, true).length, 5, 'but the declared length is kept to pass on');
  t.equal(responseFraming([], 204, false).framing, Framing.None);
  t.equal(responseFraming([], 304, false).framing, Framing.None);
  t.equal(responseFraming([], 200, false).framing, Framing.Eof, 'neither: until the connection closes');
  t.equal(headerValue(['Accept', 'a', 'accept', 'b'], 'accept'), 'a, b');
  t.equal(headerValue(['Accept', 'a'], 'host'), undefined);
});
