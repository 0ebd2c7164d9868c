import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { InboundCache, inboundCachePath } from '../../../proxy/inbound/inbound-cache.js';
import { KvIntentions } from '../../../proxy/inbound/intentions.js';
import type { LocalInstance } from '../../../proxy/ports.js';

const inst = (service: string, id: string, port = 8080): LocalInstance => ({ id, service, version: 'v1', address: '127.0.0.3', port });
const key = (source: string, destination: string): string => `weft/intentions/${source}/${destination}`;

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-inbound-cache-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('saves atomically (0600, no temporary file left) and loads back', async (t) => {
  const dir = await tempDir(t);
  const path = inboundCachePath(dir);
  t.equal(path, join(dir, 'proxy', 'inbound.json'));
  const cache = new InboundCache(path, { debounceMs: 5 });
  t.equal(await cache.load(), false, 'no file');
  t.equal(cache.intentions, undefined, 'no intentions ever received');
  // KV entries as the watch delivers them: only key and value are kept.
  cache.setIntentions([{ key: key('web', 'api'), value: '{"action":"deny"}', modifyIndex: 7 } as never, { key: key('*', 'db'), value: '{"action":"allow"}' }]);
  cache.setLocal('api', [inst('api', 'h3-api-1'), inst('api', 'h3-api-2', 8081)]);
  cache.setLocal('db', []);
  await cache.flush();
  t.strictSame(await readdir(join(dir, 'proxy')), ['inbound.json'], 'no temporary file left behind');
  t.equal((await stat(path)).mode & 0o777, 0o600);
  const doc = JSON.parse(await readFile(path, 'utf8')) as { version: number; savedAt: string };
  t.equal(doc.version, 1);
  t.ok(Date.parse(doc.savedAt) > 0, 'savedAt');

  const loaded = new InboundCache(path);
  t.equal(await loaded.load(), true);
  t.equal(loaded.savedAt, doc.savedAt);
  t.strictSame(loaded.intentions, [
    { key: key('web', 'api'), value: '{"action":"deny"}' },
    { key: key('*', 'db'), value: '{"action":"allow"}' },
  ]);
  t.strictSame(loaded.local('api')?.map((i) => [i.id, i.port]), [['h3-api-1', 8080], ['h3-api-2', 8081]]);
  t.strictSame(loaded.local('db'), [], 'an empty answer is remembered as empty');
  t.equal(loaded.local('web'), undefined);
  t.strictSame(loaded.localServices().sort(), ['api', 'db']);
});

t.test('writes are coalesced, and flush writes only what changed', async (t) => {
  const dir = await tempDir(t);
  const path = inboundCachePath(dir);
  const cache = new InboundCache(path, { debounceMs: 50 });
  await cache.flush();
  await t.rejects(stat(path), { code: 'ENOENT' }, 'nothing changed: nothing written');
  for (let i = 1; i <= 5; i++) cache.setLocal('api', [inst('api', `h3-api-${i}`)]);
  await t.rejects(stat(path), { code: 'ENOENT' }, 'not written at once');
  await new Promise((r) => setTimeout(r, 150));
  const first = await stat(path);
  t.strictSame(JSON.parse(await readFile(path, 'utf8')).local.api.map((i: LocalInstance) => i.id), ['h3-api-5'], 'one write, the last state');
  await new Promise((r) => setTimeout(r, 20));
  await cache.flush();
  t.equal((await stat(path)).mtimeMs, first.mtimeMs, 'flush without a change does not rewrite');
  cache.deleteLocal('api');
  await cache.flush();
  t.strictSame(JSON.parse(await readFile(path, 'utf8')).local, {}, 'a forgotten service is written out');
});

t.test('a live answer set before load is not overwritten by the file', async (t) => {
  const dir = await tempDir(t);
  const path = inboundCachePath(dir);
  const seed = new InboundCache(path);
  seed.setIntentions([{ key: key('web', 'api'), value: '{"action":"allow"}' }]);
  seed.setLocal('api', [inst('api', 'old')]);
  await seed.flush();
  const cache = new InboundCache(path);
  cache.setIntentions([{ key: key('web', 'api'), value: '{"action":"deny"}' }]);
  cache.setLocal('api', [inst('api', 'live')]);
  t.equal(await cache.load(), true);
  t.equal(cache.intentions?.[0]?.value, '{"action":"deny"}');
  t.strictSame(cache.local('api')?.map((i) => i.id), ['live']);
});

t.test('malformed files and sections: skipped, never fatal, intentions fail closed', async (t) => {
  const dir = await tempDir(t);
  const path = inboundCachePath(dir);
  await mkdir(join(dir, 'proxy'), { recursive: true });
  const warnings: string[] = [];
  const logger = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as never;
  const load = async (text: string) => {
    await writeFile(path, text);
    const cache = new InboundCache(path, { logger });
    return { used: await cache.load(), cache };
  };

  t.equal((await load('{ not json')).used, false);
  t.equal((await load(JSON.stringify({ version: 2, intentions: null, local: {} }))).used, false, 'an unknown format version is not misread');
  t.equal((await load(JSON.stringify({ version: 1, intentions: [] }))).used, false, 'no local section');
  t.match(warnings, ['inbound cache malformed: starting empty', 'inbound cache malformed: starting empty', 'inbound cache malformed: starting empty']);

  const { used, cache } = await load(
    JSON.stringify({
      version: 1,
      intentions: [{ key: key('web', 'api'), value: '{"action":"deny"}' }, { key: 3, value: 'x' }],
      local: {
        api: [inst('api', 'h3-api-1')],
        db: [{ id: 'h3-db-1', service: 'db', version: 'v1', address: '127.0.0.3', port: 'eighty' }],
        pay: [inst('other', 'h3-other-1')],
      },
    }),
  );
  t.equal(used, true);
  t.equal(cache.intentions, undefined, 'one unreadable entry drops every intention: deny until Consul answers');
  t.match(warnings.at(-1), /intentions malformed/);
  t.strictSame(cache.localServices(), ['api'], 'a bad instance, or one of another service, drops only its service');
});

t.test('restored entries are rebuilt like live ones: an invalid document still denies its pair', async (t) => {
  const dir = await tempDir(t);
  const path = inboundCachePath(dir);
  const seed = new InboundCache(path);
  seed.setIntentions([
    { key: key('web', 'api'), value: '{"action":"deny"}' },
    { key: key('web', 'db'), value: '{"action":"maybe"}' },
  ]);
  await seed.flush();
  const cache = new InboundCache(path);
  await cache.load();
  const intentions = new KvIntentions({ defaultAction: 'allow' });
  t.match(intentions.decide('web', 'pay'), { action: 'deny', reason: /not loaded yet/ }, 'without a cache: deny until the first answer');
  const refused = intentions.update(cache.intentions ?? []);
  t.equal(refused.length, 1);
  t.match(intentions.decide('web', 'api'), { action: 'deny', reason: /denied by intention weft\/intentions\/web\/api/ });
  t.match(intentions.decide('web', 'db'), { action: 'deny', reason: /is invalid, so it denies until fixed/ });
  t.equal(intentions.decide('web', 'pay').action, 'allow', 'default action of this process');
});
