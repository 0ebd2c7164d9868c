// Whether dist/ (the esbuild bundle of the CLI, scripts/build.mjs) was built
// from the sources exactly as they are now. Plain JavaScript: it runs before
// anything can load TypeScript.
//
// The manifest lists every source file the bundle was built from with its
// mtime and size. Any difference (an edit, a checkout, a deleted file) makes
// the bundle stale, and bin/weft.js falls back to running the sources through
// tsx: a stale bundle never runs, and an edit takes effect without a build.
// Checking is a stat per source file (about 150, well under 5 ms).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Where the bundle goes, relative to the repository root. */
export const DIST_DIR = 'dist';
/** The bundle's entry (the CLI, src/cli/main.ts), relative to the repository root. */
export const DIST_ENTRY = 'dist/weft.js';
/** The manifest, written last by the build so a reader never sees a half-written bundle as fresh. */
export const MANIFEST = 'dist/manifest.json';
/** Bumped when the manifest's shape changes. */
export const MANIFEST_VERSION = 1;

/**
 * The fingerprint of one file as the manifest stores it ("mtimeMs:size"), or
 * undefined when it does not exist.
 * @param {string} path
 * @returns {string | undefined}
 */
export function fingerprint(path) {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}`;
  } catch {
    return undefined;
  }
}

/**
 * True when `root`'s dist/ bundle matches every source it was built from.
 * @param {string} root the repository root
 * @returns {boolean}
 */
export function bundleIsFresh(root) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(root, MANIFEST), 'utf8'));
  } catch {
    return false;
  }
  if (manifest?.version !== MANIFEST_VERSION || typeof manifest.files !== 'object' || manifest.files === null) return false;
  if (fingerprint(join(root, DIST_ENTRY)) === undefined) return false;
  for (const [file, expected] of Object.entries(manifest.files)) {
    if (fingerprint(join(root, file)) !== expected) return false;
  }
  return true;
}
