import * as fs from 'node:fs';
import { fstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';
import { writeFileAtomic, writeFileAtomicSync } from '../../base/atomic-write.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-atomic-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const modeOf = (path: string) => statSync(path).mode & 0o777;

type AtomicWrite = typeof import('../../base/atomic-write.js');

/**
 * The module with its opens watched: the mode of each temporary file the
 * moment it was created (a file created 0666 and narrowed afterwards could be
 * opened by anyone in between, and that descriptor would read what follows).
 */
async function watchingCreation(t: Test): Promise<{ mod: AtomicWrite; created: number[] }> {
  const created: number[] = [];
  const record = (path: unknown, fd: number) => {
    if (String(path).endsWith('.tmp')) created.push(fstatSync(fd).mode & 0o777);
  };
  const mod = await t.mockImport<AtomicWrite>('../../base/atomic-write.js', {
    'node:fs': {
      ...fs,
      openSync: (...args: Parameters<typeof fs.openSync>) => {
        const fd = fs.openSync(...args);
        record(args[0], fd);
        return fd;
      },
    },
    'node:fs/promises': {
      ...fsp,
      open: async (...args: Parameters<typeof fsp.open>) => {
        const fh = await fsp.open(...args);
        record(args[0], fh.fd);
        return fh;
      },
    },
  });
  return { mod, created };
}

for (const [form, write] of [
  ['writeFileAtomicSync', async (path: string, data: string | Uint8Array, opts?: { mode?: number }) => writeFileAtomicSync(path, data, opts)],
  ['writeFileAtomic', writeFileAtomic],
] as const) {
  t.test(`${form}: writes a new file and replaces an existing one, leaving nothing else`, async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'state.json');
    await write(path, '{"a":1}');
    t.equal(readFileSync(path, 'utf8'), '{"a":1}');
    await write(path, Buffer.from('{"a":2}'));
    t.equal(readFileSync(path, 'utf8'), '{"a":2}');
    t.strictSame(readdirSync(dir), ['state.json'], 'no temporary file left behind');
  });

  t.test(`${form}: a 0600 file is 0600 from its creation, whatever the umask`, async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'key.pem');
    const umask = process.umask(0); // a temporary created 0666 and narrowed later would show as 0666
    t.teardown(() => process.umask(umask));
    writeFileSync(path, 'old', { mode: 0o644 });
    const { mod, created } = await watchingCreation(t);
    if (form === 'writeFileAtomicSync') mod.writeFileAtomicSync(path, 'secret', { mode: 0o600 });
    else await mod.writeFileAtomic(path, 'secret', { mode: 0o600 });
    t.strictSame(created, [0o600], 'the temporary file was created 0600');
    t.equal(modeOf(path), 0o600, 'the target replaced a 0644 file and is 0600');
    t.equal(readFileSync(path, 'utf8'), 'secret');
    t.strictSame(readdirSync(dir), ['key.pem']);
  });

  t.test(`${form}: the mode is exact past the umask; without one, the umask applies as for writeFile`, async (t) => {
    const dir = tempDir(t);
    const umask = process.umask(0o077);
    t.teardown(() => process.umask(umask));
    await write(join(dir, 'cert.pem'), 'cert', { mode: 0o644 });
    t.equal(modeOf(join(dir, 'cert.pem')), 0o644);
    process.umask(0o022);
    await write(join(dir, 'local.json'), '{}');
    t.equal(modeOf(join(dir, 'local.json')), 0o644);
  });

  t.test(`${form}: a failed write throws and leaves no temporary file`, async (t) => {
    const dir = tempDir(t);
    await t.rejects(write(join(dir, 'missing', 'state.json'), 'x'), { code: 'ENOENT' }, 'a directory that does not exist');
    mkdirSync(join(dir, 'target'));
    await t.rejects(write(join(dir, 'target'), 'x', { mode: 0o600 }), { code: 'EISDIR' }, 'a target that is a directory');
    t.strictSame(readdirSync(dir), ['target'], 'nothing but the directory');
    t.strictSame(readdirSync(join(dir, 'target')), [], 'and nothing in it');
  });
}

t.test('concurrent writers to one path leave one complete file and no temporary files', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'routes.json');
  const versions = Array.from({ length: 24 }, (_, i) => `${String(i).padStart(2, '0')}:${'x'.repeat(256 * 1024 + i)}`);
  await Promise.all(
    versions.map(async (text, i) => {
      if (i % 3 === 0) writeFileAtomicSync(path, text, { mode: 0o600 });
      else await writeFileAtomic(path, text, { mode: 0o600 });
    }),
  );
  const final = readFileSync(path, 'utf8');
  t.ok(versions.includes(final), `the file is one writer's whole text (${final.slice(0, 2)})`);
  t.equal(modeOf(path), 0o600);
  t.strictSame(readdirSync(dir), ['routes.json'], 'no temporary file left behind');
});

t.test('writers in several threads of one process (one pid) never share a temporary file', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  const module = new URL('../../base/atomic-write.ts', import.meta.url).href;
  // A worker evaluates plain JavaScript, without this process's TypeScript loader: tsx loads the module.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import('tsx/esm/api').then(({ tsImport }) => tsImport(workerData.module, workerData.module)).then(({ writeFileAtomicSync }) => {
      for (let i = 0; i < 40; i++) writeFileAtomicSync(workerData.path, workerData.text);
      parentPort.postMessage('done');
    }).catch((err) => parentPort.postMessage(String(err)));
  `;
  const texts = ['a', 'b', 'c'].map((c) => c.repeat(128 * 1024));
  const results = await Promise.all(
    texts.map(
      (text) =>
        new Promise<unknown>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { module, path, text } });
          w.once('message', (m) => void w.terminate().then(() => resolve(m)));
          w.once('error', reject);
        }),
    ),
  );
  t.strictSame(results, ['done', 'done', 'done'], 'every write succeeded');
  t.ok(texts.includes(readFileSync(path, 'utf8')), 'the file is one whole text');
  t.strictSame(readdirSync(dir), ['state.json'], 'no temporary file left behind');
});
