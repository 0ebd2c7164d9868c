import t from 'tap';
import { antiAffinityPenalty, binPackScore, spreadBoost, spreadFitScore } from '../../../scheduler/placement/rank.js';

t.test("Nomad's bin-pack fit: 20 - (10^freeCpu% + 10^freeMem%), normalised by 18", async (t) => {
  const table: Array<[string, number, number, number]> = [
    ['full after placing', 0, 0, 1],
    ['empty after placing', 100, 100, 0],
    ['half and half', 50, 50, (20 - 2 * 10 ** 0.5) / 18],
    ['cpu full, memory empty', 0, 100, (20 - 1 - 10) / 18],
  ];
  for (const [name, freeCpu, freeMem, expected] of table) t.ok(Math.abs(binPackScore(freeCpu, freeMem, 100, 100) - expected) < 1e-9, name);
  t.ok(Math.abs(spreadFitScore(100, 100, 100, 100) - 1) < 1e-9, 'spread fit prefers empty');
  t.equal(spreadFitScore(0, 0, 100, 100), 0);
});

t.test('anti-affinity penalty', async (t) => {
  t.equal(antiAffinityPenalty(0, 3), 0);
  t.equal(antiAffinityPenalty(1, 4), -0.5);
  t.equal(antiAffinityPenalty(5, 2), -1, 'capped at -1');
});

t.test('spread boost with targets and evenly', async (t) => {
  const targets = { attribute: 'zone', weight: 50, targets: new Map([['a', 0.5], ['*', 0.5]]) };
  t.equal(spreadBoost(targets, 'a', new Map(), 4), (2 - 1) / 2, 'below target');
  t.equal(spreadBoost(targets, 'a', new Map([['a', 3]]), 4), (2 - 4) / 2, 'above target');
  t.equal(spreadBoost(targets, 'z', new Map(), 4), (2 - 1) / 2, 'implicit target');
  t.equal(spreadBoost(targets, undefined, new Map(), 4), -1, 'node without the attribute');
  const even = { attribute: 'zone', weight: 50, targets: new Map<string, number>() };
  t.equal(spreadBoost(even, 'a', new Map(), 3), 0, 'nothing placed yet');
  t.equal(spreadBoost(even, 'b', new Map([['a', 1]]), 3), 1, 'an unused value');
  t.equal(spreadBoost(even, 'a', new Map([['a', 1], ['b', 1]]), 3), -1, 'already even');
  t.equal(spreadBoost(even, 'a', new Map([['a', 2], ['b', 1]]), 3), -1, 'above the minimum');
});
