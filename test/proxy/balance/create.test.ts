import t from 'tap';
import { ALGORITHMS, createPicker, DEFAULT_ALGORITHM, parseAlgorithm } from '../../../proxy/balance/create.js';
import { P2cPicker } from '../../../proxy/balance/p2c.js';
import { SwrrPicker } from '../../../proxy/balance/swrr.js';
import { eps, sequence } from '../fakes.js';

t.test('algorithm names map to pickers; p2c is the default', async (t) => {
  t.strictSame([...ALGORITHMS], ['p2c', 'swrr']);
  t.equal(DEFAULT_ALGORITHM, 'p2c');
  t.ok(createPicker('swrr') instanceof SwrrPicker);
  t.ok(createPicker('p2c') instanceof P2cPicker);
  t.strictSame(sequence(3, () => createPicker('swrr', eps('a:2', 'b:1')).pick()), ['a', 'a', 'a'], 'a fresh picker each time');
});

t.test('options reach the picker built', async (t) => {
  const hidden = createPicker('swrr', eps('a', 'b'), { available: (e) => e.id !== 'a', panic: false });
  t.strictSame(sequence(3, () => hidden.pick()), ['b', 'b', 'b']);
  const p2c = createPicker('p2c', eps('a'), { defaultRttMs: 7, now: () => 0 });
  t.equal(p2c instanceof P2cPicker ? p2c.estimateMs('a') : undefined, 7);
});

t.test('parseAlgorithm accepts known names and names the key of a bad one', async (t) => {
  t.equal(parseAlgorithm('swrr', 'services.web.balance'), 'swrr');
  for (const bad of ['round-robin', 'P2C', '', 3, undefined]) {
    t.throws(() => parseAlgorithm(bad, 'services.web.balance'), {
      code: 'WEFT_ERR_CONFIG_INVALID',
      key: 'services.web.balance',
      message: /must be one of p2c, swrr/,
    });
  }
});
