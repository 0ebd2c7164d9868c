#!/usr/bin/env node
// Entry point. Runs the esbuild bundle in dist/ when it was built from the
// sources as they are now (scripts/build.mjs; scripts/setup.sh builds it),
// else the TypeScript sources through tsx.
//
// Why a bundle: tsx compiles every module at start and keeps a loader thread
// (its own V8 isolate) for the life of the process; a long-running daemon
// such as `weft proxy` paid ~50 MB of RSS for that (proxy/README.md,
// "Runtime"). Why the fallback: a dev edit or a checkout takes effect at once
// and a stale bundle never runs. WEFT_NO_BUNDLE=1 forces the sources.
import { fileURLToPath } from 'node:url';
import { bundleIsFresh } from './bundle-manifest.js';

const root = fileURLToPath(new URL('..', import.meta.url));
let cli;
if (process.env.WEFT_NO_BUNDLE !== '1' && bundleIsFresh(root)) {
  cli = await import('../dist/weft.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../src/cli/main.ts');
}
const code = await cli.run(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
