import t from 'tap';
import { DEFAULT_WEIGHT } from '../../../base/contracts/names.js';
import { checkWeight, uniqueById, weightFromMeta } from '../../../proxy/balance/picker.js';
import { ep } from '../fakes.js';

t.test('weightFromMeta reads weft_weight, defaulting to 1', async (t) => {
  const cases: { meta: Record<string, string> | undefined; weight: number }[] = [
    { meta: undefined, weight: DEFAULT_WEIGHT },
    { meta: {}, weight: 1 },
    { meta: { weft_weight: '' }, weight: 1 },
    { meta: { weft_weight: '0' }, weight: 0 },
    { meta: { weft_weight: '10' }, weight: 10 },
    { meta: { weft_weight: '007' }, weight: 7 },
    { meta: { weft_weight: '65535', weft_version: 'v2' }, weight: 65535 },
  ];
  for (const c of cases) t.equal(weightFromMeta(c.meta, 'host1-web-1'), c.weight, JSON.stringify(c.meta));
});

t.test('weightFromMeta refuses anything but an integer 0..65535, naming instance and value', async (t) => {
  for (const raw of ['-1', '1.5', 'abc', ' 3', '65536', '1e3', '999999']) {
    t.throws(() => weightFromMeta({ weft_weight: raw }, 'host1-web-1'), {
      code: 'WEFT_ERR_WEIGHT_INVALID',
      key: 'host1-web-1: Meta.weft_weight',
      value: raw,
      message: `host1-web-1: Meta.weft_weight: must be an integer from 0 to 65535 (got ${JSON.stringify(raw)})`,
    });
  }
});

t.test('checkWeight accepts integers 0..65535 only', async (t) => {
  t.equal(checkWeight(ep('a', 0)), 0);
  t.equal(checkWeight(ep('a', 65535)), 65535);
  t.throws(() => checkWeight(ep('a', Number.POSITIVE_INFINITY)), { code: 'WEFT_ERR_WEIGHT_INVALID' });
});

t.test('uniqueById keeps first positions and last values', async (t) => {
  const out = uniqueById([ep('a', 1), ep('b', 2), ep('a', 3)]);
  t.strictSame(out, [ep('a', 3), ep('b', 2)]);
});
