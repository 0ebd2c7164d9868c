import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
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
