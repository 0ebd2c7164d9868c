/**
 * The agent's status writes against the dev Consul agent: the reports of a
 * moment go out as one transaction with the newest state of each record, a
 * delete after a write of the same key wins, and a batch Consul did not take
 * (the agent down for a moment, for real) is written once it is back.
 */
import t from 'tap';
import { StatusReporter } from '../../agent/status-reporter.js';
import { createDiscoveryClient } from '../../discovery/client.js';
import { getJSON, putJSON } from '../../discovery/kv.js';
import { startTestConsul } from '../helpers/dev-consul.js';

t.test('reports of a moment are one transaction, newest state per record', async (t) => {
  const c = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: c.address } });
  t.teardown(() => client.close());
  const reporter = new StatusReporter(client);
  await putJSON(client, 'weft/alloc-status/h1/old', { state: 'failed' });
  const before = c.agent.store.index;
  await Promise.all([
    reporter.set('weft/alloc-status/h1/a', { state: 'pending' }),
    reporter.set('weft/alloc-status/h1/b', { state: 'pending' }),
    reporter.set('weft/alloc-status/h1/a', { state: 'running' }),
    reporter.delete('weft/alloc-status/h1/old'),
  ]);
  t.equal(c.agent.store.index, before + 1, 'one transaction');
  t.strictSame((await getJSON(client, 'weft/alloc-status/h1/a'))?.value, { state: 'running' }, 'the newest state');
  t.strictSame((await getJSON(client, 'weft/alloc-status/h1/b'))?.value, { state: 'pending' });
  t.equal(await getJSON(client, 'weft/alloc-status/h1/old'), undefined, 'the delete went with them');

  // A write then a delete of one record: deleted, whether they share a batch or not.
  await Promise.all([reporter.set('weft/alloc-status/h1/c', { state: 'running' }), reporter.delete('weft/alloc-status/h1/c')]);
  t.equal(await getJSON(client, 'weft/alloc-status/h1/c'), undefined);
  const first = reporter.set('weft/alloc-status/h1/d', { state: 'running' });
  await new Promise((r) => setTimeout(r, 30)); // the first batch is on its way
  await Promise.all([first, reporter.delete('weft/alloc-status/h1/d')]);
  t.equal(await getJSON(client, 'weft/alloc-status/h1/d'), undefined);
  await reporter.flush();
});

t.test('a batch Consul did not take is written once Consul is back', async (t) => {
  const c = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: c.address } });
  t.teardown(() => client.close());
  const reporter = new StatusReporter(client);
  await c.agent.close(); // Consul is down: the first attempts fail (connection refused)
  const report = reporter.set('weft/alloc-status/h1/a', { state: 'running' });
  await new Promise((r) => setTimeout(r, 300));
  await c.restart();
  await report;
  t.strictSame((await getJSON(client, 'weft/alloc-status/h1/a'))?.value, { state: 'running' }, 'written after the restart');
  await reporter.flush();
});
