/**
 * The inbound's table of local instances: an instance that leaves the set
 * (deregistered, about to stop) stays reachable by its id for the linger
 * time, so a caller's proxy that has not seen the deregistration yet does not
 * fail; it is never picked for new routing. Time is injected.
 */
import t from 'tap';
import type { LocalInstance } from '../../../proxy/ports.js';
import { LocalInstanceTable } from '../../../proxy/inbound/local-services.js';

const inst = (id: string, service = 'api'): LocalInstance => ({ id, service, version: 'v1', address: '127.0.0.1', port: 9000 });

t.test('a leaving instance is reachable by id for lingerMs, never picked, then gone', async (t) => {
  let now = 1_000;
  const a = inst('h1-a');
  const b = inst('h1-b');
  const table = new LocalInstanceTable([a, b], { lingerMs: 5_000, now: () => now });
  table.update([a]);
  t.equal(table.instance('api', 'h1-b'), b, 'still reachable by id just after it left');
  t.strictSame([table.pick('api'), table.pick('api'), table.pick('api')], [a, a, a], 'never picked once it left');
  t.strictSame(table.all(), [a], 'not listed');
  now += 4_999;
  t.equal(table.instance('api', 'h1-b'), b, 'reachable until the linger ends');
  now += 1;
  t.equal(table.instance('api', 'h1-b'), undefined, 'gone after the linger');
  t.equal(table.instance('api', 'h1-zz'), undefined, 'an id never seen is unknown');
});

t.test('an instance that comes back is a member again; lingerMs 0 forgets at once', async (t) => {
  let now = 0;
  const a = inst('h1-a');
  const table = new LocalInstanceTable([a], { lingerMs: 5_000, now: () => now });
  table.update([]);
  table.update([a]);
  now += 10_000;
  table.update([a]);
  t.equal(table.instance('api', 'h1-a'), a, 'back in the set: no expiry applies');
  t.equal(table.pick('api'), a);

  const strict = new LocalInstanceTable([a], { lingerMs: 0 });
  strict.update([]);
  t.equal(strict.instance('api', 'h1-a'), undefined);
});
