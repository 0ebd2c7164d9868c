import t from 'tap';
import { effectiveVersionWeights, parseSplit, splitKey, validateSplit } from '../../../proxy/balance/split.js';

t.test('valid split documents parse into ordered version weights', async (t) => {
  const cases: { text: string; expected: [string, number][] }[] = [
    { text: '{ "v1": 90, "v2": 10 }', expected: [['v1', 90], ['v2', 10]] },
    { text: '{"v1": 1}', expected: [['v1', 1]] },
    { text: '{"a": 50, "b": 30, "c": 20}', expected: [['a', 50], ['b', 30], ['c', 20]] },
    { text: '{"v1": 0, "v2": 100}', expected: [['v1', 0], ['v2', 100]] },
    { text: '{"1.2.3+build.7": 3, "canary_2": 1}', expected: [['1.2.3+build.7', 3], ['canary_2', 1]] },
    { text: '{"v1": 1000000}', expected: [['v1', 1_000_000]] },
    { text: `{"${'v'.repeat(128)}": 1}`, expected: [['v'.repeat(128), 1]] },
  ];
  for (const c of cases) t.strictSame([...parseSplit('backend', c.text)], c.expected, c.text);
});

t.test('invalid documents fail with WEFT_ERR_SPLIT_INVALID naming key and value', async (t) => {
  const cases: { text: string; key: string; value: unknown; reason: RegExp }[] = [
    { text: 'v1=90', key: 'weft/splits/backend', value: 'v1=90', reason: /must be a JSON object/ },
    { text: '[90, 10]', key: 'weft/splits/backend', value: [90, 10], reason: /JSON object of version -> weight/ },
    { text: 'null', key: 'weft/splits/backend', value: null, reason: /JSON object/ },
    { text: '90', key: 'weft/splits/backend', value: 90, reason: /JSON object/ },
    { text: '{}', key: 'weft/splits/backend', value: {}, reason: /at least one version/ },
    { text: '{"v1": 0, "v2": 0}', key: 'weft/splits/backend', value: { v1: 0, v2: 0 }, reason: /weight above 0/ },
    { text: '{"v1": -10, "v2": 110}', key: 'weft/splits/backend#/v1', value: -10, reason: /integer from 0/ },
    { text: '{"v1": 2.5}', key: 'weft/splits/backend#/v1', value: 2.5, reason: /integer from 0/ },
    { text: '{"v1": "90"}', key: 'weft/splits/backend#/v1', value: '90', reason: /integer from 0/ },
    { text: '{"v1": null}', key: 'weft/splits/backend#/v1', value: null, reason: /integer from 0/ },
    { text: '{"v1": 1000001}', key: 'weft/splits/backend#/v1', value: 1_000_001, reason: /integer from 0 to 1000000/ },
    { text: '{"": 10}', key: 'weft/splits/backend#/', value: '', reason: /version must be/ },
    { text: `{"${'v'.repeat(129)}": 1}`, key: `weft/splits/backend#/${'v'.repeat(129)}`, value: 'v'.repeat(129), reason: /1-128 letters/ },
    { text: '{"v 1": 10}', key: 'weft/splits/backend#/v 1', value: 'v 1', reason: /version must be/ },
    { text: '{"a/b": 10}', key: 'weft/splits/backend#/a~1b', value: 'a/b', reason: /version must be/ },
    { text: '{"__proto__": 10}', key: 'weft/splits/backend#/__proto__', value: '__proto__', reason: /version must be/ },
  ];
  for (const c of cases) {
    t.throws(() => parseSplit('backend', c.text), { code: 'WEFT_ERR_SPLIT_INVALID', key: c.key, value: c.value, message: c.reason }, c.text);
  }
});

t.test('error messages carry the key and the offending value', async (t) => {
  t.throws(() => validateSplit('backend', { v1: -1 }), {
    message: 'weft/splits/backend#/v1: weight must be an integer from 0 to 1000000 (got -1)',
  });
  t.equal(splitKey('backend'), 'weft/splits/backend');
});

t.test('versions without instances drop out, handing their share to the rest', async (t) => {
  const split = parseSplit('backend', '{"v1": 60, "v2": 30, "v3": 10}');
  const cases: { live: string[]; expected: [string, number][] | undefined }[] = [
    { live: ['v1', 'v2', 'v3'], expected: [['v1', 60], ['v2', 30], ['v3', 10]] },
    { live: ['v1', 'v2'], expected: [['v1', 60], ['v2', 30]] },
    { live: ['v2', 'v4'], expected: [['v2', 30]] },
    { live: ['v4'], expected: undefined },
    { live: [], expected: undefined },
  ];
  for (const c of cases) {
    const got = effectiveVersionWeights(split, new Set(c.live));
    t.strictSame(got === undefined ? undefined : [...got], c.expected, `live: ${c.live.join(',') || 'none'}`);
  }
  t.equal(effectiveVersionWeights(undefined, new Set(['v1'])), undefined, 'no split');
  const drainedV1 = parseSplit('backend', '{"v1": 0, "v2": 100}');
  t.equal(effectiveVersionWeights(drainedV1, new Set(['v1'])), undefined, 'only a weight-0 version is live: split ignored');
});
