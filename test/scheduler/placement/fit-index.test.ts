import fc from 'fast-check';
import t from 'tap';
import { FitIndex } from '../../../scheduler/placement/fit-index.js';

t.test('firstFit agrees with a linear scan after any sequence of updates', async (t) => {
  const op = fc.record({ pos: fc.nat(40), cpu: fc.integer({ min: -1, max: 10 }), mem: fc.integer({ min: -1, max: 10 }) });
  const query = fc.record({ from: fc.nat(45), cpu: fc.integer({ min: 0, max: 10 }), mem: fc.integer({ min: 0, max: 10 }) });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), fc.array(query, { minLength: 1, maxLength: 20 }), (ops, queries) => {
      const n = 41;
      const index = new FitIndex(n);
      const cpu = new Array(n).fill(-1);
      const mem = new Array(n).fill(-1);
      for (const o of ops) {
        index.set(o.pos, o.cpu, o.mem);
        cpu[o.pos] = o.cpu;
        mem[o.pos] = o.mem;
      }
      for (const q of queries) {
        let expected = -1;
        for (let i = q.from; i < n; i++) {
          if (cpu[i] >= q.cpu && mem[i] >= q.mem) {
            expected = i;
            break;
          }
        }
        if (index.firstFit(q.from, q.cpu, q.mem) !== expected) return false;
      }
      return true;
    }),
  );
  t.pass('linear scan and index agree');
});

t.test('a cleared position is never found', async (t) => {
  const index = new FitIndex(4);
  index.set(2, 5, 5);
  t.equal(index.firstFit(0, 1, 1), 2);
  index.clear(2);
  t.equal(index.firstFit(0, 0, 0), -1);
  t.equal(index.firstFit(99, 0, 0), -1, 'from beyond the end');
});
