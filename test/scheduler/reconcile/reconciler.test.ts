import t from 'tap';
import type { GroupDemand } from '../../../scheduler/model.js';
import { demand, node, nodes } from '../helpers/fixtures.js';
import { Harness, job } from '../helpers/harness.js';

const web = (over: Partial<GroupDemand> = {}) => demand({ job: 'web', group: 'web', count: 3, ...over });
const reasons = (xs: Array<{ reason: string }>) => xs.map((x) => x.reason).sort();

t.test('a new job gets its count, then the plan is empty and the deployment successful', async (t) => {
  const h = new Harness(nodes(3));
  h.submit(job('web', [web()]));
  const plan = h.step();
  t.equal(plan.place.length, 3);
  t.strictSame(plan.place.map((p) => p.index).sort(), [0, 1, 2]);
  t.equal(h.deployment('web')?.status, 'running');
  const next = h.step();
  t.equal(next.place.length + next.stop.length, 0, 'nothing more to do');
  t.equal(h.deployment('web')?.status, 'successful');
  t.equal(h.deployment('web')?.stableVersion, 1);
});

t.test('scale up with an unready host', async (t) => {
  const h = new Harness(nodes(3));
  h.submit(job('web', [web({ count: 1 })]));
  h.converge();
  h.kill('n1');
  h.submit(job('web', [web({ count: 4 })]));
  const plan = h.step();
  t.equal(plan.place.length, 3);
  t.notOk(plan.place.some((p) => p.node === 'n1'), 'nothing lands on the down node');
});

t.test('scale down stops the highest indexes first, unhealthy before healthy', async (t) => {
  const h = new Harness(nodes(3));
  h.submit(job('web', [web({ count: 5 })]));
  h.converge();
  h.set((a) => a.index === 1, { healthy: false });
  h.submit(job('web', [web({ count: 2 })]));
  const plan = h.step();
  t.strictSame(plan.stop.map((s) => s.alloc.index).sort(), [1, 3, 4]);
  t.strictSame(reasons(plan.stop), ['scale-down', 'scale-down', 'scale-down']);
});

t.test('a lost host: nothing before lost_after, replacements after, no duplicates when it returns', async (t) => {
  const h = new Harness(nodes(4));
  h.submit(job('web', [web({ count: 4 })]));
  h.converge();
  const onN0 = h.of('web').filter((a) => a.node === 'n0');
  t.ok(onN0.length > 0, 'n0 runs something');
  h.kill('n0');
  h.advance(10_000);
  const early = h.step();
  t.equal(early.place.length + early.stop.length, 0, 'a down host keeps its allocations for now');
  t.equal(early.followUpAtMs, h.nowMs + 20_000, 'the reconciler asks to look again when the host turns lost');
  h.advance(20_000);
  const plan = h.step();
  t.strictSame(
    plan.stop.map((s) => s.alloc.id).sort(),
    onN0.map((a) => a.id).sort(),
  );
  t.ok(plan.stop.every((s) => s.reason === 'node-lost'));
  t.equal(plan.place.length, onN0.length);
  t.ok(plan.place.every((p) => p.node !== 'n0' && p.reason === 'replace-lost'));
  h.revive('n0');
  t.equal(h.converge(), 1, 'its return changes nothing');
  t.equal(h.of('web').length, 4, 'no duplicates');
  t.strictSame(h.of('web').map((a) => a.index).sort(), [0, 1, 2, 3]);
});

t.test('a failed allocation is rescheduled after its delay, away from its node, until attempts run out', async (t) => {
  const h = new Harness(nodes(3));
  const reschedule = { attempts: 1, intervalMs: 3_600_000, delayMs: 30_000, delayFunction: 'exponential' as const, maxDelayMs: 600_000, unlimited: false };
  h.submit(job('web', [web({ count: 1, reschedule })]));
  h.converge();
  const [first] = h.of('web');
  h.set((a) => a.id === first!.id, { status: 'failed', failedAtMs: h.nowMs });
  const waiting = h.step();
  t.equal(waiting.place.length, 0, 'not before the delay');
  t.equal(waiting.followUpAtMs, h.nowMs + 30_000);
  h.advance(30_000);
  const plan = h.step();
  t.strictSame(reasons(plan.stop), ['rescheduled']);
  t.equal(plan.place[0]?.reason, 'reschedule');
  t.not(plan.place[0]?.node, first!.node, 'the failed node is avoided');
  t.strictSame(plan.place[0]?.reschedules, [h.nowMs]);
  const [second] = h.of('web');
  h.set((a) => a.id === second!.id, { status: 'failed', failedAtMs: h.nowMs });
  h.advance(120_000);
  const spent = h.step();
  t.equal(spent.place.length + spent.stop.length, 0, 'one attempt per hour: the allocation stays failed');
});

t.test('a rolling update, stop-first, goes in batches of parallelism', async (t) => {
  const h = new Harness(nodes(4));
  h.submit(job('web', [web({ count: 4, update: { ...web().update, parallelism: 2 } })]));
  h.converge();
  h.outcome = () => 'pending';
  h.submit(job('web', [web({ count: 4, version: 2, fingerprint: 'f2', update: { ...web().update, parallelism: 2 } })], { version: 2 }));
  const batch1 = h.step();
  t.equal(batch1.stop.length, 2);
  t.equal(batch1.place.length, 2);
  t.ok(batch1.place.every((p) => p.reason === 'update' && p.fingerprint === 'f2'));
  t.equal(h.step().place.length, 0, 'no new batch while the first is not healthy');
  h.set((a) => a.fingerprint === 'f2', { status: 'running', healthy: true, healthySinceMs: h.nowMs });
  h.outcome = () => 'healthy';
  const batch2 = h.step();
  t.equal(batch2.place.length, 2);
  h.step();
  t.ok(h.of('web').every((a) => a.fingerprint === 'f2'));
  t.equal(h.deployment('web')?.status, 'successful');
  t.equal(h.deployment('web')?.stableVersion, 2);
});

t.test('a rolling update, start-first, surges and stops the old once the new is healthy', async (t) => {
  const h = new Harness(nodes(4));
  const update = { ...web().update, order: 'start-first' as const };
  h.submit(job('web', [web({ count: 2, update })]));
  h.converge();
  h.outcome = () => 'pending';
  h.submit(job('web', [web({ count: 2, version: 2, fingerprint: 'f2', update })], { version: 2 }));
  const surge = h.step();
  t.equal(surge.stop.length, 0, 'nothing old stops first');
  t.equal(surge.place.length, 1);
  t.equal(h.of('web').length, 3, 'count + parallelism running');
  h.set((a) => a.fingerprint === 'f2', { status: 'running', healthy: true, healthySinceMs: h.nowMs });
  const next = h.step();
  t.equal(next.stop.length, 1, 'an old one stops');
  t.equal(next.place.length, 1, 'the next new one starts');
  h.set((a) => a.fingerprint === 'f2', { status: 'running', healthy: true, healthySinceMs: h.nowMs });
  h.step();
  t.ok(h.of('web').every((a) => a.fingerprint === 'f2'));
  t.equal(h.of('web').length, 2);
});

t.test('a rolling update to a failing version auto-reverts', async (t) => {
  const h = new Harness(nodes(3));
  const update = { ...web().update, autoRevert: true, healthDeadlineMs: 60_000 };
  h.submit(job('web', [web({ count: 3, update })]));
  h.converge();
  h.outcome = (a) => (a.fingerprint === 'bad' ? 'unhealthy' : 'healthy');
  h.submit(job('web', [web({ count: 3, version: 2, fingerprint: 'bad', update })], { version: 2 }));
  h.step();
  t.equal(h.of('web').filter((a) => a.fingerprint === 'bad').length, 1, 'the first batch starts');
  h.advance(61_000);
  const failed = h.step();
  t.equal(h.deployment('web')?.status, 'failed');
  t.match(h.deployment('web')?.message, /not healthy within 60000 ms/);
  t.strictSame(failed.reverts, [{ job: 'web', fromVersion: 2, toVersion: 1 }]);
  t.equal(h.jobs[0]?.version, 3, 'the stable spec comes back as version 3');
  h.converge();
  t.ok(h.of('web').every((a) => a.fingerprint === 'f1'), 'every allocation runs the stable spec again');
  t.equal(h.of('web').length, 3);
  t.equal(h.deployment('web')?.status, 'successful');
});

t.test('a failed deployment without auto-revert stops replacing', async (t) => {
  const h = new Harness(nodes(3));
  const update = { ...web().update, healthDeadlineMs: 10_000 };
  h.submit(job('web', [web({ count: 3, update })]));
  h.converge();
  h.outcome = (a) => (a.fingerprint === 'bad' ? 'unhealthy' : 'healthy');
  h.submit(job('web', [web({ count: 3, version: 2, fingerprint: 'bad', update })], { version: 2 }));
  h.step();
  h.advance(11_000);
  const plan = h.step();
  t.equal(h.deployment('web')?.status, 'failed');
  t.equal(plan.reverts.length, 0);
  h.advance(1_000);
  t.equal(h.step().place.length, 0, 'no further batches');
  t.equal(h.of('web').filter((a) => a.fingerprint === 'f1').length, 2, 'two old allocations keep serving');
});

t.test('draining a node migrates its allocations in batches', async (t) => {
  const h = new Harness(nodes(3, () => ({ capacity: { cpu: 8000, memory: 8192 } })));
  h.submit(job('web', [web({ count: 4, update: { ...web().update, parallelism: 1 } })]));
  h.converge();
  const busiest = ['n0', 'n1', 'n2'].sort((a, b) => h.of('web').filter((x) => x.node === b).length - h.of('web').filter((x) => x.node === a).length)[0]!;
  const on = h.of('web').filter((a) => a.node === busiest).length;
  h.outcome = () => 'pending';
  h.drain(busiest);
  const first = h.step();
  t.equal(first.place.length, Math.min(1, on), 'one at a time');
  t.ok(first.place.every((p) => p.node !== busiest && p.reason === 'migrate'));
  h.outcome = () => 'healthy';
  h.set(() => true, { status: 'running', healthy: true, healthySinceMs: h.nowMs });
  h.converge();
  t.equal(h.of('web').filter((a) => a.node === busiest).length, 0, 'the node is empty');
  t.equal(h.of('web').length, 4);
});

t.test('a host-volume group is sticky: updates stay on its node, a lost node waits', async (t) => {
  const ns = [node('n0', { hostVolumes: ['pg'] }), node('n1', { hostVolumes: ['pg'] }), node('n2')];
  const h = new Harness(ns);
  const pg = (over: Partial<GroupDemand> = {}) => demand({ job: 'pg', group: 'db', count: 1, hostVolumes: ['pg'], ...over });
  h.submit(job('pg', [pg()]));
  h.converge();
  const [first] = h.of('pg');
  t.not(first!.node, 'n2', 'only hosts with the volume');
  h.submit(job('pg', [pg({ version: 2, fingerprint: 'f2' })], { version: 2 }));
  const update = h.step();
  t.equal(update.place[0]?.node, first!.node, 'the new version lands where the data is');
  t.equal(update.stop[0]?.alloc.id, first!.id);
  h.kill(first!.node);
  h.advance(31_000);
  const lost = h.step();
  t.equal(lost.place.length, 0, 'no copy elsewhere');
  t.equal(lost.failures[0]?.message, `2 nodes not ${first!.node} (the group's host volume data is there), 1 node lost`);
  h.revive(first!.node);
  const back = h.step();
  t.equal(back.place[0]?.node, first!.node, 'it comes back on its node');
});

t.test('an update whose new version fits nowhere keeps the old allocation running', async (t) => {
  const h = new Harness(nodes(1, () => ({ capacity: { cpu: 1000, memory: 1024 } })));
  h.submit(job('web', [web({ count: 1, resources: { cpu: 500, memory: 512 } })]));
  h.converge();
  h.submit(job('web', [web({ count: 1, version: 2, fingerprint: 'f2', resources: { cpu: 2000, memory: 512 } })], { version: 2 }));
  const plan = h.step();
  t.equal(plan.stop.length, 0, 'the old allocation is not stopped');
  t.equal(plan.place.length, 0);
  t.equal(plan.failures[0]?.message, '1 node lacked cpu');
});

t.test('placement failures say how many are missing and why', async (t) => {
  const h = new Harness(nodes(2, () => ({ capacity: { cpu: 1000, memory: 1024 } })));
  h.submit(job('web', [web({ count: 5, resources: { cpu: 600, memory: 100 } })]));
  const plan = h.step();
  t.equal(plan.place.length, 2);
  t.equal(plan.failures.length, 1);
  t.equal(plan.failures[0]?.missing, 3);
  t.equal(plan.failures[0]?.message, '2 nodes lacked cpu');
});

t.test('stopping and removing jobs and groups', async (t) => {
  const h = new Harness(nodes(2));
  h.submit(job('web', [web({ count: 2 }), demand({ job: 'web', group: 'worker', count: 1 })]));
  h.submit(job('api', [demand({ job: 'api', group: 'api', count: 1 })]));
  h.converge();
  h.submit(job('web', [web({ count: 2 })]));
  t.strictSame(reasons(h.step().stop), ['group-removed']);
  h.submit(job('web', [web({ count: 2 })], { stopped: true }));
  t.strictSame(reasons(h.step().stop), ['job-stopped', 'job-stopped']);
  h.jobs = h.jobs.filter((j) => j.name !== 'api');
  t.strictSame(reasons(h.step().stop), ['job-removed']);
});

t.test('higher priority jobs are placed first when capacity is short', async (t) => {
  const h = new Harness(nodes(1, () => ({ capacity: { cpu: 1000, memory: 4096 } })));
  h.submit(job('low', [demand({ job: 'low', group: 'g', count: 2, priority: 10 })]));
  h.submit(job('high', [demand({ job: 'high', group: 'g', count: 2, priority: 90 })]));
  const plan = h.step();
  t.strictSame(plan.place.map((p) => p.job), ['high', 'high']);
  t.equal(plan.failures[0]?.job, 'low');
});

t.test('duplicate slots (the same index twice) are stopped', async (t) => {
  const h = new Harness(nodes(2));
  h.submit(job('web', [web({ count: 2 })]));
  h.converge();
  const [a] = h.of('web');
  h.allocs.push({ ...a!, id: 'dup', node: a!.node === 'n0' ? 'n1' : 'n0', healthy: false });
  const plan = h.step();
  t.strictSame(plan.stop.map((s) => [s.alloc.id, s.reason]), [['dup', 'duplicate']]);
});

t.test('several duplicate slots: the dearest of each kept, the others stopped slot by slot in the order the slots were first seen', async (t) => {
  const h = new Harness(nodes(3));
  h.submit(job('web', [web({ count: 4 })]));
  h.converge();
  const [a0, a1, a2] = [0, 1, 2].map((i) => h.of('web').find((a) => a.index === i)!);
  // Slot 2 before slot 0 in the list; slot 1 twice over; an older spec's copy in slot 2 is no duplicate of the current one.
  h.allocs.unshift({ ...a2!, id: 'd2-unhealthy', healthy: false });
  h.allocs.push({ ...a0!, id: 'd0-older', createdAtMs: a0!.createdAtMs - 1 });
  h.allocs.push({ ...a1!, id: 'd1-b', healthy: false }, { ...a1!, id: 'd1-a', healthy: false });
  h.allocs.push({ ...a2!, id: 'd2-old-spec', fingerprint: 'an older one' });
  const plan = h.step();
  t.strictSame(
    plan.stop.filter((s) => s.reason === 'duplicate').map((s) => s.alloc.id),
    ['d2-unhealthy', a0!.id, 'd1-a', 'd1-b'],
    'slot 2 first (seen first): its unhealthy copy; slot 0: the newer of two alike; slot 1: the unhealthy copies by id',
  );
});
