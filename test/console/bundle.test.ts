/**
 * How the console's bundle is built and found (src/console/bundle.js): the
 * in-memory build the scheduler falls back to, and the freshness check that
 * decides whether dist/console/ (written by scripts/build.mjs) may be served.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import t from 'tap';
// @ts-expect-error plain JavaScript (bin/ runs before anything compiles TypeScript), no declarations
import { fingerprint } from '../../bin/bundle-manifest.js';
import { buildConsole, CONSOLE_DIST, CONSOLE_FILES, CONSOLE_MANIFEST, CONSOLE_MANIFEST_VERSION, readBuiltConsole } from '../../src/console/bundle.js';

const ROOT = join(import.meta.dirname, '../..');

t.test('the in-memory build makes every served file from the sources, uPlot inside', async (t) => {
  const { files, inputs } = await buildConsole(ROOT, esbuild);
  t.strictSame([...files.keys()].sort(), Object.keys(CONSOLE_FILES).sort());
  const js = files.get('app.js')!.toString();
  t.ok(js.length < 150_000, `app.js is small: ${js.length} bytes`);
  t.notMatch(js, /\binnerHTML\b|insertAdjacentHTML|document\.write/, 'nothing in the bundle parses HTML from data');
  t.match(files.get('style.css')!.toString(), /\.u-legend/, "uPlot's styles are bundled into style.css");
  t.ok(inputs.includes('src/console/main.ts') && inputs.includes('src/console/index.html'), 'the inputs name the sources');
  t.ok(
    inputs.some((f) => f.startsWith('node_modules/uplot/')),
    'and uPlot: a new uPlot makes the bundle stale',
  );
});

t.test('dist/console is served only while its manifest matches every input', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'weft-console-bundle-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'src/console'), { recursive: true });
  mkdirSync(join(root, CONSOLE_DIST), { recursive: true });
  const source = join(root, 'src/console/main.ts');
  writeFileSync(source, 'export {};\n');
  for (const name of Object.keys(CONSOLE_FILES)) writeFileSync(join(root, CONSOLE_DIST, name), `built ${name}`);
  const manifest = (files: Record<string, string | undefined>, version = CONSOLE_MANIFEST_VERSION) =>
    writeFileSync(join(root, CONSOLE_MANIFEST), JSON.stringify({ version, files }));

  manifest({ 'src/console/main.ts': fingerprint(source) });
  const fresh = readBuiltConsole(root);
  t.equal(fresh?.get('app.js')?.toString(), 'built app.js', 'fresh: the built files');

  manifest({ 'src/console/main.ts': fingerprint(source) }, CONSOLE_MANIFEST_VERSION + 1);
  t.equal(readBuiltConsole(root), undefined, 'a manifest of another version is not trusted');

  manifest({ 'src/console/main.ts': fingerprint(source) });
  const later = new Date(Date.now() + 5000);
  utimesSync(source, later, later);
  t.equal(readBuiltConsole(root), undefined, 'a source edited after the build: stale');

  manifest({ 'src/console/main.ts': fingerprint(source) });
  rmSync(join(root, CONSOLE_DIST, 'app.js'));
  t.equal(readBuiltConsole(root), undefined, 'a built file missing: stale');

  rmSync(join(root, CONSOLE_MANIFEST));
  t.equal(readBuiltConsole(root), undefined, 'no manifest: nothing to serve');
});
