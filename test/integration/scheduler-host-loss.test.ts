/**
 * No document outlives its allocation across host losses, against a real
 * `weft scheduler` and six host agents (process driver, real processes) on
 * 127.0.10.2-7: a job of 16 allocations, two hosts lost one after the other,
 * then a scale-down. After each step the KV is counted: exactly one
 * allocation document and one status record per allocation the job has, and
 * none at all on a lost host. (Status records used to pile up: 2,103 for
 * 1,000 allocations after two host losses in the benchmark.)
 */
import t from 'tap';
import { listEntries } from '../../discovery/kv.js';
import { ALLOC_STATUS_PREFIX, ALLOCS_PREFIX } from '../../base/contracts/alloc.js';
import { eventually } from '../helpers/eventually.js';
import { api, type SimAgent, startSchedulerOnConsul, startSimAgent } from './scheduler-cluster.js';

const COUNT = 16;

/** A job of `count` small allocations that run `sleep` (8 fit on a host: binpack fills hosts one by one). */
function job(count: number) {
  return {
    name: 'many',
    update: { minHealthyTime: '0s', healthDeadline: '30s' },
    groups: [{ name: 'g', count, tasks: [{ name: 'nap', driver: 'process', command: 'sleep', args: ['600'], resources: { cpu: 500, memory: 32 } }] }],
  };
}

t.test('two host losses and a scale-down leave one document and one status record per allocation', async (t) => {
  const { consul, client, url } = await startSchedulerOnConsul(t);
  const sims: SimAgent[] = [];
  for (let i = 0; i < 6; i++) sims.push(await startSimAgent(t, consul, `hl${i}`, `127.0.10.${i + 2}`, url));

  type Summary = { running: number; desired: number };
  const summary = async (): Promise<Summary | undefined> => ((await api(url(), 'GET', '/v1/jobs')).body as { jobs?: Array<Summary & { name: string }> }).jobs?.find((j) => j.name === 'many');
  /** Hosts of the documents and of the status records, by allocation id. */
  const kv = async (): Promise<{ docs: Map<string, string>; statuses: Map<string, string> }> => {
    const byId = async (prefix: string): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for (const e of await listEntries(client, prefix)) {
        const [host, id] = e.key.slice(prefix.length).split('/');
        out.set(id!, host!);
      }
      return out;
    };
    return { docs: await byId(ALLOCS_PREFIX), statuses: await byId(ALLOC_STATUS_PREFIX) };
  };
  /** Waits until the job runs `count` allocations on hosts other than `lost`, each with exactly one document and one status record. */
  const settled = async (count: number, lost: ReadonlySet<string>, what: string): Promise<void> => {
    await eventually(
      async () => {
        const s = await summary();
        if (s?.running !== count) return undefined;
        const { docs, statuses } = await kv();
        if (docs.size !== count || statuses.size !== count) return undefined;
        for (const [id, host] of docs) if (lost.has(host) || statuses.get(id) !== host) return undefined;
        return true;
      },
      60_000,
      what,
      250,
    );
  };

  t.equal((await api(url(), 'POST', '/v1/jobs', { spec: job(COUNT) })).status, 200);
  await settled(COUNT, new Set(), `${COUNT} allocations running`);

  const lost = new Set<string>();
  for (const step of ['first', 'second']) {
    // The host running the most allocations crashes: no deregistration, its heartbeat just stops.
    const { docs } = await kv();
    const counts = new Map<string, number>();
    for (const host of docs.values()) counts.set(host, (counts.get(host) ?? 0) + 1);
    const victim = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    await sims.find((s) => s.host === victim)!.crash();
    lost.add(victim);
    await settled(COUNT, lost, `the ${step} lost host's allocations replaced`);
    const { docs: d, statuses: st } = await kv();
    t.equal(d.size, COUNT, `after the ${step} host loss: ${COUNT} allocation documents`);
    t.equal(st.size, COUNT, `after the ${step} host loss: ${COUNT} status records`);
    t.notOk([...st.values()].some((h) => lost.has(h)), 'none left on a lost host');
  }

  t.equal((await api(url(), 'POST', '/v1/jobs/many/scale', { count: 4 })).status, 200);
  await settled(4, lost, 'the scale-down to 4');
  const { docs, statuses } = await kv();
  t.equal(docs.size, 4, 'after the scale-down: 4 allocation documents');
  t.equal(statuses.size, 4, 'after the scale-down: 4 status records');

  await api(url(), 'DELETE', '/v1/jobs/many?purge=true');
  for (const s of sims) if (!lost.has(s.host)) await eventually(async () => ((await s.agent.driver.list()).length === 0 ? true : undefined), 30_000, `${s.host}: nothing left running`);
  // The crashed hosts' processes outlive their agents (as real ones do): the harness kills them at teardown.
});
