/**
 * Status records no agent will clean, against a real `weft scheduler` and a
 * host agent (process driver) on 127.0.8.2: when the host is lost, the
 * scheduler deletes its allocation's document and status record together,
 * and the records left on lost hosts (or hosts no agent announces) without a
 * document; the records of a live host with documents stay.
 */
import t from 'tap';
import { getEntry, putJSON } from '../../discovery/kv.js';
import { allocStatusKey } from '../../base/contracts/alloc.js';
import { eventually } from '../helpers/eventually.js';
import { api, demoJob, startSchedulerOnConsul, startSimAgent } from './scheduler-cluster.js';

function job(name: string) {
  return demoJob(name);
}

t.test('status records of a lost host', async (t) => {
  const { consul, client, url } = await startSchedulerOnConsul(t);
  const host = 'sc1';
  const sim = await startSimAgent(t, consul, host, '127.0.8.2', url);
  const allocations = async () => ((await api(url(), 'GET', '/v1/jobs/lonely/status')).body as { allocations?: Array<{ id: string; node: string; status: string }> }).allocations ?? [];

  t.equal((await api(url(), 'POST', '/v1/jobs', { spec: job('lonely') })).status, 200);
  const running = await eventually(
    async () => (await allocations()).find((a) => a.node === host && a.status === 'running'),
    30_000,
    'lonely running',
    250,
  );
  const taskAlloc = `${running.id}-demo`;
  const statusKey = allocStatusKey(host, taskAlloc);
  t.ok(await getEntry(client, statusKey), 'the agent reported its status');

  await sim.crash(); // the heartbeat stops; the process keeps running
  // Records no document backs: one on the crashed host, one on a host no agent ever announced.
  const ghost = allocStatusKey(host, 'ghost-1');
  const stranger = allocStatusKey('never-seen', 'ghost-2');
  const record = { id: 'ghost', state: 'failed', restarts: 0, message: 'refused', updatedAt: new Date().toISOString() };
  await putJSON(client, ghost, { ...record, id: 'ghost-1' });
  await putJSON(client, stranger, { ...record, id: 'ghost-2' });

  await t.test('once the host is lost, its allocation goes with its status record', async (t) => {
    await eventually(async () => ((await allocations()).some((a) => a.node === host) ? undefined : true), 30_000, 'the allocation on the lost host stopped', 250);
    await eventually(async () => ((await getEntry(client, statusKey)) === undefined ? true : undefined), 10_000, 'its status record deleted');
    t.pass('deleted by the scheduler');
  });

  await t.test('records without a document on lost or unknown hosts are deleted', async (t) => {
    await eventually(async () => ((await getEntry(client, ghost)) === undefined && (await getEntry(client, stranger)) === undefined ? true : undefined), 10_000, 'orphaned records deleted');
    t.pass('deleted');
  });

  // The host comes back: its agent stops the process whose document is gone (the job may be placed there again).
  await sim.start();
  await eventually(async () => ((await sim.agent.driver.list()).some((task) => task.labels['io.weft.alloc'] === taskAlloc) ? undefined : true), 20_000, 'the stale process stopped');
  await api(url(), 'DELETE', '/v1/jobs/lonely?purge=true');
  await eventually(async () => ((await sim.agent.driver.list()).length === 0 ? true : undefined), 20_000, 'nothing left running');
});
