/**
 * Where the scheduler client connects and with which token. Address:
 * `--addr` > $WEFT_ADDR > config `client.address` > http://127.0.0.1:7400.
 * Token: `--token` > $WEFT_TOKEN > config `client.token` > config
 * `scheduler.token` > the scheduler's own token file `<dataDir>/scheduler/token`, so on the scheduler's machine (and
 * under `weft up`) the CLI works with no setup. Without any token the request
 * goes out bare and the API's 401 says how to provide one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/load.js';
import { ENV_WEFT_TOKEN } from '../../../base/env.js';
import { configFrom } from '../flags.js';
import { SchedulerClient } from './scheduler-client.js';

/** Where the scheduler writes its API token (the scheduler creates it, 0600). */
export function tokenFile(dataDir: string): string {
  return join(dataDir, 'scheduler', 'token');
}

/** Options every client command takes. */
export interface ConnectionFlags {
  addr?: string;
  token?: string;
  json?: boolean;
}

/** `host:port` -> `http://host:port`; URLs pass through without a trailing slash. */
export function normalizeAddress(address: string): string {
  const withScheme = /^https?:\/\//.test(address) ? address : `http://${address}`;
  return withScheme.replace(/\/+$/, '');
}

/** Resolves the token and where it came from (for the 401 hint); the token file only when readable. */
export function resolveToken(config: Readonly<Config>, flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): { token?: string; source?: string } {
  if (flags.token !== undefined) return { token: flags.token, source: '--token' };
  if (config.client.token !== undefined) {
    const fromEnv = env[ENV_WEFT_TOKEN] !== undefined && env[ENV_WEFT_TOKEN] !== '';
    return { token: config.client.token, source: fromEnv ? `$${ENV_WEFT_TOKEN}` : 'the config file (client.token)' };
  }
  // The scheduler's own token setting: a config file shared with the scheduler on its machine.
  if (config.scheduler.token !== undefined) return { token: config.scheduler.token, source: 'the config file (scheduler.token)' };
  const file = tokenFile(config.dataDir);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token !== '') return { token, source: file };
  } catch {
    // Not on the scheduler's machine (or not allowed to read it): go without.
  }
  return {};
}

/** Builds the client for a command from its flags and the merged configuration. */
export function clientFor(cmd: Command, flags: ConnectionFlags): { client: SchedulerClient; config: Readonly<Config> } {
  const config = configFrom(cmd, { 'client.address': [flags.addr, '--addr'] });
  const { token, source } = resolveToken(config, flags);
  return { client: new SchedulerClient({ address: normalizeAddress(config.client.address), token, tokenSource: source }), config };
}

/** Adds `--addr`, `--token` and `--json` to a client command. */
export function withConnectionFlags(cmd: Command): Command {
  return cmd
    .option('--addr <url>', 'scheduler API address; also $WEFT_ADDR (default http://127.0.0.1:7400)')
    .option('--token <token>', 'API bearer token; prefer $WEFT_TOKEN (a flag shows in ps and shell history)')
    .option('--json', "print the API's JSON answer instead of a table");
}
