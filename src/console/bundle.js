// How the console's browser bundle is built and found, shared by
// scripts/build.mjs (writes dist/console/) and the scheduler
// (src/wiring/scheduler-console.ts, which serves it). Plain JavaScript: the
// build script runs under plain node.
//
//   src/console/main.ts ─esbuild─▶ app.js     (browser, IIFE, minified; uPlot inside)
//   src/console/style.css ────────▶ style.css (uPlot's CSS @imported)
//   src/console/index.html, favicon.svg ─ copied
//   dist/console/manifest.json ─ every input's "mtime:size" (as bin/bundle-manifest.js's), written last
//
// The scheduler serves dist/console/ when its manifest matches the sources
// as they are now, else builds the same files in memory (as bin/weft.js
// runs the sources through tsx when the CLI bundle is stale).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Where the console's bundle goes, relative to the repository root. */
export const CONSOLE_DIST = 'dist/console';
/** Its manifest (written last by the build). */
export const CONSOLE_MANIFEST = 'dist/console/manifest.json';
/** Bumped when the manifest's shape or the file list changes. */
export const CONSOLE_MANIFEST_VERSION = 1;

/** The files the console serves, and their content types. */
export const CONSOLE_FILES = Object.freeze({
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
});

/** Copied as they are. */
const STATIC = ['index.html', 'favicon.svg'];

/**
 * Builds the console in memory with esbuild.
 * @param {string} root the repository root
 * @param {typeof import('esbuild')} esbuild
 * @returns {Promise<{ files: Map<string, Buffer>, inputs: string[] }>} the served files by name, and every source they came from (relative to root)
 */
export async function buildConsole(root, esbuild) {
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { app: 'src/console/main.ts', style: 'src/console/style.css' },
    outdir: join(root, CONSOLE_DIST),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari15'],
    minify: true,
    legalComments: 'none',
    tsconfig: join(root, 'tsconfig.json'),
    metafile: true,
    write: false,
    logLevel: 'silent',
  });
  const files = new Map();
  for (const out of result.outputFiles) {
    const name = out.path.slice(out.path.lastIndexOf('/') + 1);
    if (name in CONSOLE_FILES) files.set(name, Buffer.from(out.contents));
  }
  for (const name of STATIC) files.set(name, readFileSync(join(root, 'src/console', name)));
  const inputs = [...Object.keys(result.metafile.inputs), ...STATIC.map((n) => `src/console/${n}`), 'src/console/bundle.js'];
  return { files, inputs: [...new Set(inputs)].sort() };
}

/**
 * The built console in dist/console/ when its manifest matches every input
 * as it is now; undefined when missing or stale.
 * @param {string} root the repository root
 * @returns {Map<string, Buffer> | undefined}
 */
export function readBuiltConsole(root) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(root, CONSOLE_MANIFEST), 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest?.version !== CONSOLE_MANIFEST_VERSION || typeof manifest.files !== 'object' || manifest.files === null) return undefined;
  // The same "mtime:size" bin/bundle-manifest.js writes (production code may not import bin/).
  const stale = Object.entries(manifest.files).some(([file, expected]) => {
    try {
      const s = statSync(join(root, file));
      return `${s.mtimeMs}:${s.size}` !== expected;
    } catch {
      return true;
    }
  });
  if (stale) return undefined;
  const files = new Map();
  try {
    for (const name of Object.keys(CONSOLE_FILES)) files.set(name, readFileSync(join(root, CONSOLE_DIST, name)));
  } catch {
    return undefined;
  }
  return files;
}
