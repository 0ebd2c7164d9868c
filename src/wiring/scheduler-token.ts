/**
 * The scheduler API's tokens.
 *
 * - The operator token: `scheduler.token` from the config, else the file
 *   `<dataDir>/scheduler/token` (0600), created with 32 random bytes on first
 *   start. A file readable by group or others is refused.
 * - Agent tokens, one per host: `weft-host.<host>.<hmac>` where hmac =
 *   HMAC-SHA256(operator token, "weft-host:" + host). The scheduler checks them
 *   without storing anything, and every instance sharing the operator token
 *   accepts them. An agent token may only sign CSRs for services allocated to
 *   its host and read the secrets of its host's allocations.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NAME_RULES } from '../../base/contracts/names.js';
import { WeftError } from '../../base/errors.js';

/** Who a token says the caller is. */
export type Caller = { kind: 'operator' } | { kind: 'agent'; host: string };

/** The token file path. */
export function tokenPath(dataDir: string): string {
  return join(dataDir, 'scheduler', 'token');
}

/** The configured token, or the token file's (created when absent). `created` says a new file was written. */
export function loadOrCreateToken(dataDir: string, configured?: string): { token: string; path?: string; created: boolean } {
  if (configured !== undefined) return { token: configured, created: false };
  const path = tokenPath(dataDir);
  try {
    if (existsSync(path)) {
      const mode = statSync(path).mode & 0o077;
      if (mode !== 0) throw new WeftError('WEFT_ERR_SCHEDULER_TOKEN', `${path} is readable by others (mode ${(statSync(path).mode & 0o777).toString(8)}); run chmod 600 ${path}`, { key: 'path', value: path });
      const token = readFileSync(path, 'utf8').trim();
      if (token.length < 16) throw new WeftError('WEFT_ERR_SCHEDULER_TOKEN', `${path}: token shorter than 16 characters`, { key: 'path', value: path });
      return { token, path, created: false };
    }
    mkdirSync(join(dataDir, 'scheduler'), { recursive: true, mode: 0o700 });
    const token = randomBytes(32).toString('base64url');
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    return { token, path, created: true };
  } catch (err) {
    if (err instanceof WeftError) throw err;
    throw new WeftError('WEFT_ERR_SCHEDULER_TOKEN', `${path}: ${(err as Error).message}`, { key: 'path', value: path, cause: err });
  }
}

/** The agent token of `host`. */
export function agentToken(operatorToken: string, host: string): string {
  return `weft-host.${host}.${createHmac('sha256', operatorToken).update(`weft-host:${host}`).digest('base64url')}`;
}

/** `weft-host.<host>.<mac>`: the host is a KV key segment (the node name in allocation keys). */
const AGENT_TOKEN_RE = new RegExp(`^weft-host\\.(${NAME_RULES.segment})\\.([A-Za-z0-9_-]+)$`);

/** Checks a presented token; undefined when it is not valid. */
export function authenticate(operatorToken: string, presented: string | undefined): Caller | undefined {
  if (presented === undefined || presented === '') return undefined;
  if (equal(presented, operatorToken)) return { kind: 'operator' };
  const m = AGENT_TOKEN_RE.exec(presented);
  if (m !== null && equal(presented, agentToken(operatorToken, m[1]!))) return { kind: 'agent', host: m[1]! };
  return undefined;
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
