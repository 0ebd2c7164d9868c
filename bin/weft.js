#!/usr/bin/env node
// Entry point: registers tsx so weft runs from its TypeScript sources, then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../src/cli/main.ts');
const code = await run(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
