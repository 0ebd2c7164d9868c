/**
 * Host volumes in task specs (agent/alloc-spec.ts): Docker gets bind mounts,
 * the process driver (which cannot mount) gets the directory in
 * WEFT_VOLUME_<NAME>; a volume the host does not offer fails the start.
 */
import t from 'tap';
import { taskSpec, volumeEnv } from '../../agent/alloc-spec.js';
import type { Allocation } from '../../base/contracts/alloc.js';

const base: Allocation = {
  id: 'a1-web',
  job: 'j',
  group: 'g',
  task: 'web',
  driver: 'process',
  command: '/bin/true',
  env: {},
  resources: { cpu: 100, memory: 64 },
  labels: {},
  restart: { attempts: 0, interval: 60_000, delay: 0, mode: 'fail' },
  volumes: [{ type: 'host', source: 'pg-data', destination: '/data', readOnly: true }],
};
const ctx = { host: 'h1', hostAddress: '127.0.0.2', hostVolumes: { 'pg-data': '/srv/pg' } };

t.test('volume env names', async (t) => {
  for (const [name, env] of [['data', 'WEFT_VOLUME_DATA'], ['pg-data', 'WEFT_VOLUME_PG_DATA'], ['a.b_c', 'WEFT_VOLUME_A_B_C']] as const) t.equal(volumeEnv(name), env, name);
});

t.test('process driver: the host directory in the environment', async (t) => {
  const spec = taskSpec(base, ctx);
  t.equal(spec.env['WEFT_VOLUME_PG_DATA'], '/srv/pg');
  t.strictSame(spec.mounts, [{ type: 'bind', source: '/srv/pg', destination: '/data', readOnly: true }]);
});

t.test('docker driver: a bind mount, and the mount point in the environment', async (t) => {
  const spec = taskSpec({ ...base, driver: 'docker', image: 'x', volumes: [...base.volumes!, { type: 'docker', source: 'cache', destination: '/cache' }] }, ctx);
  t.strictSame(spec.mounts, [
    { type: 'bind', source: '/srv/pg', destination: '/data', readOnly: true },
    { type: 'volume', source: 'cache', destination: '/cache', readOnly: false },
  ]);
  t.strictSame([spec.env['WEFT_VOLUME_PG_DATA'], spec.env['WEFT_VOLUME_CACHE']], ['/data', '/cache']);
});

t.test('refused: a host volume the host lacks, a docker volume under the process driver', async (t) => {
  t.throws(() => taskSpec(base, { ...ctx, hostVolumes: {} }), { code: 'WEFT_ERR_HOST_VOLUME_MISSING', key: 'agent.hostVolumes', value: 'pg-data' });
  t.throws(() => taskSpec({ ...base, volumes: [{ type: 'docker', source: 'cache', destination: '/c' }] }, ctx), { code: 'WEFT_ERR_ALLOC_INVALID', value: 'cache' });
  t.equal(taskSpec({ ...base, volumes: undefined } as Allocation, ctx).mounts, undefined, 'no volumes, no mounts');
});
