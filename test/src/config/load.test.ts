import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Ajv, type ValidateFunction } from 'ajv';
import fc from 'fast-check';
import t from 'tap';
import { configValidatorSource, GENERATED_PATH } from '../../../scripts/gen-config-validator.js';
import { parseConsulAddress } from '../../../discovery/client.js';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigSchema } from '../../../src/config/schema.js';
import { validate as generated } from '../../../src/config/validator.generated.js';
import { isWeftError } from '../../../base/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

t.test('defaults fill every key and the result is frozen', async (t) => {
  const c = loadConfig({ env: {} });
  t.equal(c.consul.address, '127.0.0.1:8500');
  t.equal(c.devConsul.port, 8500);
  t.equal(c.log.level, 'info');
  t.equal(c.datacenter, 'dc1');
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.consul), 'frozen all the way down');
});

t.test('precedence is flags > environment > config file > defaults', async (t) => {
  const f = file('p.yaml', 'devConsul:\n  port: 8600\n  bind: 127.0.0.9\nlog:\n  level: debug\ndatacenter: from-file\n');
  const env = { WEFT_DEV_CONSUL_PORT: '8700', WEFT_LOG_LEVEL: 'warn' };
  const c = loadConfig({ file: f, env, flags: { 'devConsul.port': '8800' } });
  t.equal(c.devConsul.port, 8800, 'flag beats env and file');
  t.equal(c.log.level, 'warn', 'env beats file');
  t.equal(c.devConsul.bind, '127.0.0.9', 'file beats default');
  t.equal(c.datacenter, 'from-file');
});

t.test('WEFT_CONFIG names the file; JSON files parse too', async (t) => {
  const f = file('c.json', JSON.stringify({ nodeName: 'host-a' }));
  t.equal(loadConfig({ env: { WEFT_CONFIG: f } }).nodeName, 'host-a');
});

t.test('CONSUL_HTTP_ADDR sets the Consul address', async (t) => {
  t.equal(loadConfig({ env: { CONSUL_HTTP_ADDR: 'http://127.0.0.2:8501' } }).consul.address, 'http://127.0.0.2:8501');
});

const bad: Array<{ name: string; opts: Parameters<typeof loadConfig>[0]; code: string; key: string; text: RegExp }> = [
  {
    name: 'non-numeric port from a flag',
    opts: { env: {}, flags: { 'devConsul.port': 'abc' }, flagNames: { 'devConsul.port': '--port' } },
    code: 'WEFT_ERR_CONFIG_INVALID',
    key: 'devConsul.port',
    text: /devConsul\.port: must be integer \(got "abc" from flag --port\)/,
  },
  {
    name: 'port out of range from the environment',
    opts: { env: { WEFT_DEV_CONSUL_PORT: '70000' } },
    code: 'WEFT_ERR_CONFIG_INVALID',
    key: 'devConsul.port',
    text: /from env WEFT_DEV_CONSUL_PORT/,
  },
  {
    name: 'unknown log level lists the allowed ones',
    opts: { env: { WEFT_LOG_LEVEL: 'loud' } },
    code: 'WEFT_ERR_CONFIG_INVALID',
    key: 'log.level',
    text: /must be one of trace, debug, info, warn, error, fatal, silent \(got "loud"/,
  },
  {
    name: 'a typo in a config file key',
    opts: { env: {}, file: file('typo.yaml', 'devConsul:\n  prot: 1\n') },
    code: 'WEFT_ERR_CONFIG_INVALID',
    key: 'devConsul.prot',
    text: /devConsul\.prot: unknown key \(from file .*typo\.yaml\)/,
  },
  {
    name: 'a malformed Consul address',
    opts: { env: { CONSUL_HTTP_ADDR: 'not an address' } },
    code: 'WEFT_ERR_CONFIG_INVALID',
    key: 'consul.address',
    text: /consul\.address/,
  },
  {
    name: 'a config file that does not exist',
    opts: { env: {}, file: join(dir, 'missing.yaml') },
    code: 'WEFT_ERR_CONFIG_FILE',
    key: 'config',
    text: /missing\.yaml/,
  },
  {
    name: 'a config file that is not YAML',
    opts: { env: {}, file: file('broken.yaml', 'a: [1, 2\n') },
    code: 'WEFT_ERR_CONFIG_FILE',
    key: 'config',
    text: /broken\.yaml/,
  },
  {
    name: 'a config file holding a list',
    opts: { env: {}, file: file('list.yaml', '- 1\n- 2\n') },
    code: 'WEFT_ERR_CONFIG_FILE',
    key: 'config',
    text: /must hold a mapping/,
  },
];

for (const c of bad) {
  t.test(`rejects ${c.name}`, async (t) => {
    try {
      loadConfig(c.opts);
      t.fail('expected an error');
    } catch (err) {
      t.ok(isWeftError(err), 'a coded weft error');
      if (!isWeftError(err)) throw err;
      t.equal(err.code, c.code);
      t.equal(err.key, c.key);
      t.match(err.message, c.text);
    }
  });
}

t.test('parseConsulAddress accepts host:port and URLs', async (t) => {
  t.strictSame(parseConsulAddress('127.0.0.1:8500'), { host: '127.0.0.1', port: 8500, secure: false });
  t.strictSame(parseConsulAddress('https://consul.example:8501/'), { host: 'consul.example', port: 8501, secure: true });
  t.strictSame(parseConsulAddress('http://localhost'), { host: 'localhost', port: 8500, secure: false });
});

t.test('the generated validator is up to date with the schema and Ajv (else: npm run gen:config)', async (t) => {
  t.ok(readFileSync(GENERATED_PATH, 'utf8') === configValidatorSource(), `${GENERATED_PATH} matches what the generator writes now`);
});

t.test('the generated validator decides, fills and coerces as Ajv compiling the schema does', async (t) => {
  const compiled = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false }).compile(ConfigSchema);
  const standalone = generated as unknown as ValidateFunction;
  const leaves: string[][] = [];
  const walk = (node: { properties?: Record<string, unknown> }, path: string[]): void => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const c = child as { properties?: Record<string, unknown> };
      if (c.properties === undefined) leaves.push([...path, key]);
      else walk(c, [...path, key]);
    }
  };
  walk(ConfigSchema, []);
  const value = fc.oneof(
    fc.constantFrom('', '0', '1', '-1', '1.5', '70000', 'true', 'false', 'null', 'abc', 'info', 'loud', 'p2c', 'deny', '127.0.0.1:8500', 'https://c:8501/', 'not an address', 'x'.repeat(20)),
    fc.integer({ min: -2, max: 70_000 }),
    fc.double({ noNaN: true }),
    fc.boolean(),
    fc.constant(null),
    fc.string({ maxLength: 4 }),
    fc.jsonValue({ maxDepth: 1 }),
  );
  const path = fc.oneof({ arbitrary: fc.constantFrom(...leaves), weight: 8 }, { arbitrary: fc.constantFrom(['nope'], ['log', 'nope'], ['agent', 'attributes', 'zone'], ['agent', 'hostVolumes', 'data'], ['proxy', 'timeouts']), weight: 1 });
  fc.assert(
    fc.property(fc.array(fc.tuple(path, value), { maxLength: 4 }), (sets) => {
      const doc: Record<string, unknown> = {};
      for (const [keys, v] of sets) {
        let node = doc;
        for (const k of keys.slice(0, -1)) {
          if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
          node = node[k] as Record<string, unknown>;
        }
        node[keys[keys.length - 1]!] = v;
      }
      const a = structuredClone(doc);
      const b = structuredClone(doc);
      const okA = compiled(a);
      const okB = standalone(b);
      return isDeepStrictEqual([okB, b, standalone.errors ?? null], [okA, a, compiled.errors ?? null]);
    }),
    { numRuns: 2000 },
  );
  t.pass('2,000 configurations: same verdict, same filled and coerced result, same errors');
});
