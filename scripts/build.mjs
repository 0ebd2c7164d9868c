#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts) into dist/ with esbuild, for bin/weft.js
// to run instead of the TypeScript sources (see its header for why), and the
// web console (src/console/, for the browser) into dist/console/, which the
// scheduler serves at /ui (src/console/bundle.js says how; a stale or missing
// console bundle is built in memory by the scheduler instead).
//
//   node scripts/build.mjs [--if-stale]     (scripts/setup.sh runs it with --if-stale)
//
// - esbuild comes with tsx; its JS API runs the platform binary from
//   @esbuild/<platform> directly, so it works even when npm skipped install scripts.
// - npm packages stay external (Node loads them from node_modules as it does
//   under tsx); only weft's own modules are bundled.
// - Code splitting keeps each subcommand's dynamic import() a separate chunk:
//   `weft proxy` never loads the CA, the agent or the dev Consul agent.
// - Chunks sit directly in dist/, one level below the root like src/ and
//   agent/, so `new URL('../package.json', import.meta.url)` still resolves.
// - Files are written to a temporary name and renamed (a concurrent
//   `weft` never reads a torn file), the manifest last; bin/bundle-manifest.js
//   decides freshness from it.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { bundleIsFresh, DIST_DIR, fingerprint, MANIFEST, MANIFEST_VERSION } from '../bin/bundle-manifest.js';
import { buildConsole, CONSOLE_DIST, CONSOLE_MANIFEST, CONSOLE_MANIFEST_VERSION } from '../src/console/bundle.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ifStale = process.argv.includes('--if-stale');
if (ifStale && bundleIsFresh(root)) process.exit(0);

const startedAt = Date.now();
const outdir = join(root, DIST_DIR);
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { weft: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: '[name]-[hash]',
  tsconfig: 'tsconfig.json',
  metafile: true,
  write: false,
  logLevel: 'warning',
});

const consoleBuilt = await buildConsole(root, esbuild);

mkdirSync(outdir, { recursive: true });
rmSync(join(root, MANIFEST), { force: true });
const written = new Set();
for (const file of result.outputFiles) {
  const tmp = `${file.path}.tmp-${process.pid}`;
  writeFileSync(tmp, file.contents);
  renameSync(tmp, file.path);
  written.add(file.path);
}

// The console: its files, then its own manifest (what the scheduler checks).
const consoleDir = join(root, CONSOLE_DIST);
mkdirSync(consoleDir, { recursive: true });
rmSync(join(root, CONSOLE_MANIFEST), { force: true });
for (const [name, contents] of consoleBuilt.files) {
  const tmp = join(consoleDir, `${name}.tmp-${process.pid}`);
  writeFileSync(tmp, contents);
  renameSync(tmp, join(consoleDir, name));
}

/** "mtime:size" of each input; `changed` when one was written after the build started. */
function prints(list) {
  const out = {};
  let changed = false;
  for (const file of [...new Set(list)].sort()) {
    const print = fingerprint(join(root, file));
    out[file] = print;
    if (print === undefined || Number(print.split(':')[0]) >= startedAt) changed = true;
  }
  return { files: out, changed };
}
const consoleInputs = [...consoleBuilt.inputs, 'tsconfig.json'];
const consolePrints = prints(consoleInputs);
if (!consolePrints.changed) {
  const tmp = join(root, `${CONSOLE_MANIFEST}.tmp-${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify({ version: CONSOLE_MANIFEST_VERSION, builtAt: new Date(startedAt).toISOString(), files: consolePrints.files }, null, 1)}\n`);
  renameSync(tmp, join(root, CONSOLE_MANIFEST));
}

// Everything the output depends on besides node_modules: the sources, and the build's own settings
// (the console's sources too: `--if-stale` rebuilds both when either changed).
const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.startsWith('node_modules/'));
inputs.push('tsconfig.json', 'scripts/build.mjs', 'bin/bundle-manifest.js', ...consoleInputs.filter((f) => !f.startsWith('node_modules/')));
const { files, changed: changedDuringBuild } = prints(inputs);
// A source edited while esbuild read it: no manifest, so bin/weft.js uses the sources until the next build.
if (!changedDuringBuild) {
  const tmp = join(root, `${MANIFEST}.tmp-${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify({ version: MANIFEST_VERSION, builtAt: new Date(startedAt).toISOString(), files }, null, 1)}\n`);
  renameSync(tmp, join(root, MANIFEST));
}
// Chunks of earlier builds (their names carry a content hash) are no longer referenced.
for (const name of readdirSync(outdir)) {
  const path = join(outdir, name);
  if (name.endsWith('.js') && !written.has(path)) rmSync(path, { force: true });
}
const bytes = result.outputFiles.reduce((n, f) => n + f.contents.length, 0);
const consoleKiB = [...consoleBuilt.files.values()].map((b) => `${(b.length / 1024).toFixed(0)}`);
console.error(
  `build: ${relative(root, outdir)}/ ${result.outputFiles.length} files, ${(bytes / 1024).toFixed(0)} KiB from ${inputs.length} sources; ${CONSOLE_DIST}/ ${[...consoleBuilt.files.keys()].map((n, i) => `${n} ${consoleKiB[i]} KiB`).join(', ')}; in ${Date.now() - startedAt} ms${changedDuringBuild ? ' (a source changed during the build: left stale)' : ''}`,
);
