import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { outboundOptions } from '../../../proxy/outbound/options.js';
import { RouteCache, routeCachePath } from '../../../proxy/outbound/route-cache.js';
import { RouteTable } from '../../../proxy/outbound/routes.js';
import type { RouteInstance } from '../../../proxy/ports.js';
import { FakeRouteSource } from './helpers.js';

const inst = (id: string, extra: Partial<RouteInstance> = {}): RouteInstance => ({
  id,
  address: '127.0.0.2',
  port: 8080,
  meshPort: 15443,
  version: 'v1',
  weight: 1,
  healthy: true,
  ...extra,
});

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-route-cache-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('saves atomically and loads back', async (t) => {
  const dir = await tempDir(t);
  const path = routeCachePath(dir);
  const cache = new RouteCache(path, { debounceMs: 5 });
  t.strictSame([...(await cache.load())], [], 'no file: empty');
  cache.set('backend', { instances: [inst('h2-a'), inst('h3-b', { meshPort: undefined })], split: '{"v1":1}' });
  await cache.flush();
  t.strictSame(await readdir(join(dir, 'proxy')), ['routes.json'], 'no temporary file left behind');
  const loaded = await new RouteCache(path).load();
  t.strictSame(loaded.get('backend')?.instances.map((i) => [i.id, i.meshPort]), [['h2-a', 15443], ['h3-b', undefined]]);
  t.equal(loaded.get('backend')?.split, '{"v1":1}');
});

t.test('a malformed file or entry is skipped, never fatal', async (t) => {
  const dir = await tempDir(t);
  const path = routeCachePath(dir);
  await mkdir(join(dir, 'proxy'), { recursive: true });
  await writeFile(path, '{ not json');
  t.strictSame([...(await new RouteCache(path).load())], []);
  await writeFile(path, JSON.stringify({ version: 1, services: { good: { instances: [inst('a')], split: null }, bad: { instances: [{ id: 1 }], split: null } } }));
  t.strictSame([...(await new RouteCache(path).load()).keys()], ['good']);
  await writeFile(path, JSON.stringify({ version: 2, services: {} }));
  t.strictSame([...(await new RouteCache(path).load())], [], 'an unknown format version is not misread');
});

t.test('route table: cache first, then the source; an invalid split keeps the last good one', async (t) => {
  const dir = await tempDir(t);
  const path = routeCachePath(dir);
  const seed = new RouteCache(path);
  seed.set('backend', { instances: [inst('cached-1')], split: null });
  await seed.flush();

  const source = new FakeRouteSource();
  const table = new RouteTable(source, outboundOptions({ listeners: [{ service: 'frontend', port: 0 }] }), new RouteCache(path, { debounceMs: 5 }));
  await table.start();
  t.strictSame(table.services(), ['backend'], 'cached services are subscribed at start');
  const route = table.get('backend');
  t.equal(route.picker.pick()?.id, 'cached-1', 'routes from the cache before the source answers');

  source.setSplit('backend', { v2: 1 });
  source.setInstances('backend', [inst('h2-v1'), inst('h2-v2', { version: 'v2' })]);
  t.equal(route.picker.pick()?.id, 'h2-v2', 'the source replaces the cache');
  source.setSplit('backend', '{"v2": -1}');
  t.equal(route.splitText, '{"v2":1}', 'invalid split ignored');
  t.equal(route.picker.pick()?.id, 'h2-v2');
  await table.close();
  const saved = JSON.parse(await readFile(path, 'utf8')) as { services: Record<string, { instances: Array<{ id: string }> }> };
  t.strictSame(saved.services['backend']?.instances.map((i) => i.id), ['h2-v1', 'h2-v2'], 'written back on close');
});
