import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import t from 'tap';
import { HostProxyLocalSchema } from '../../../base/contracts/host-proxy-schema.js';
import { LocalConfigFile, parseLocalConfig } from '../../../src/wiring/proxy-local-config.js';

t.test('bad local.json documents are WEFT_ERR_PROXY_LOCAL_INVALID naming the key and value', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['{', /^local\.json: not JSON/],
    ['{"host":"h","generation":1,"services":[{"service":"Web","outboundPort":1}]}', /^local\.json#\/services\/0\/service: .*\(got "Web"\)/],
    ['{"host":"h","generation":1,"services":[{"service":"web","outboundPort":70000}]}', /^local\.json#\/services\/0\/outboundPort: .*\(got 70000\)/],
    ['{"host":"h","generation":1,"services":[],"extra":1}', /^local\.json#\/extra/],
    ['{"host":"h","generation":1,"services":[{"service":"a","outboundPort":1},{"service":"b","outboundPort":1}]}', /^local\.json#\/services\/1\/outboundPort: used twice \(got 1\)/],
  ];
  for (const [text, message] of cases) t.throws(() => parseLocalConfig(text), { code: 'WEFT_ERR_PROXY_LOCAL_INVALID', message }, text);
  t.strictSame(parseLocalConfig('{"host":"h","generation":2,"services":[{"service":"web","outboundPort":15001}]}').services, [{ service: 'web', outboundPort: 15001 }]);
});

t.test('LocalConfigFile re-reads on change and keeps the last good document', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-local-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = new LocalConfigFile(join(dir, 'local.json'));
  t.equal(file.check({ strict: true }), undefined, 'missing: nothing yet');
  await writeFile(join(dir, 'local.json'), '{"host":"h","generation":1,"services":[]}');
  t.equal(file.check()?.generation, 1);
  t.equal(file.check(), undefined, 'unchanged: not re-read');
  await writeFile(join(dir, 'local.json'), '{"host":"h","generation":"two","services":[]}');
  t.equal(file.check(), undefined, 'bad: ignored');
  t.equal(file.current?.generation, 1, 'last good kept');
  await writeFile(join(dir, 'local.json'), '{"host":"h","generation":"three","services":[]}');
  t.throws(() => file.check({ strict: true }), { code: 'WEFT_ERR_PROXY_LOCAL_INVALID', key: `${join(dir, 'local.json')}#/generation` }, 'strict at start-up');
});

t.test("the proxy's check of local.json reports what TypeBox reports for the contract's schema", async (t) => {
  // Mostly valid documents with a wrong value here and there, keys in any order, one missing or one
  // unexpected; and any JSON at all.
  const json = fc.jsonValue({ maxDepth: 2 });
  const mostly = (valid: fc.Arbitrary<unknown>, invalid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
    fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: fc.oneof(invalid, json), weight: 1 });
  const mangled = (rec: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<unknown> =>
    fc
      .tuple(
        rec,
        fc.oneof({ arbitrary: fc.constant(-1), weight: 5 }, { arbitrary: fc.nat(), weight: 1 }),
        fc.oneof({ arbitrary: fc.constant(null), weight: 4 }, { arbitrary: fc.tuple(fc.constantFrom('extra', '~/x', '__proto__'), json), weight: 1 }),
        fc.nat(),
        fc.boolean(),
      )
      .map(([r, drop, extra, at, reverse]) => {
        const entries = Object.entries(r);
        if (drop >= 0 && entries.length > 0) entries.splice(drop % entries.length, 1);
        if (extra !== null) entries.splice(at % (entries.length + 1), 0, extra);
        return Object.fromEntries(reverse ? entries.reverse() : entries);
      });
  const service = mangled(
    fc.record({
      service: mostly(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/), fc.constantFrom('', 'Web', '-a', 'a-', 'a'.repeat(64), 'a'.repeat(63))),
      outboundPort: mostly(fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(1, 65535)), fc.constantFrom(0, -1, 65536, 1.5, '80')),
    }),
  );
  const doc = fc.oneof(
    {
      arbitrary: mangled(
        fc.record({
          host: mostly(fc.string({ minLength: 1, maxLength: 3 }), fc.constantFrom('', 1)),
          generation: mostly(fc.oneof(fc.nat(), fc.constant(0)), fc.constantFrom(-1, 0.5, '1')),
          services: mostly(fc.array(service, { maxLength: 3 }), fc.constantFrom({}, [1], 'a')),
        }),
      ),
      weight: 8,
    },
    { arbitrary: json, weight: 1 },
  );
  let valid = 0;
  fc.assert(
    fc.property(doc, (value) => {
      const text = JSON.stringify(value) ?? 'null';
      const first = Value.Errors(HostProxyLocalSchema, JSON.parse(text)).First();
      let message: string | undefined;
      try {
        parseLocalConfig(text);
      } catch (err) {
        message = (err as Error).message;
      }
      if (first === undefined) {
        valid++;
        return message === undefined || /: used twice \(got /.test(message);
      }
      const key = first.path === '' ? 'local.json' : `local.json#${first.path}`;
      return message === `${key}: ${first.message} (got ${JSON.stringify(first.value)})`;
    }),
    { numRuns: 5000 },
  );
  t.ok(valid > 100, `5,000 documents (${valid} valid), same verdict and message`);
});
