/**
 * The agent's hand-off file `<dataDir>/proxy/local.json`
 * (src/contracts/host-proxy.ts): which local services call out, and on which
 * loopback port each. Validated with the contract's TypeBox schema; a bad
 * file is WEFT_ERR_PROXY_LOCAL_INVALID naming the key (`services/1/outboundPort`)
 * and the value. `LocalConfigFile.check()` re-reads it when it changed on
 * disk and keeps the last good document when the new one is bad, so a
 * half-edited file never takes the proxy's listeners away.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { HOST_PROXY_DIR, HOST_PROXY_LOCAL_FILE, type HostProxyLocal, HostProxyLocalSchema } from '../contracts/host-proxy.js';
import { WeftError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';

/** The hand-off file of a data directory. */
export function localConfigPath(dataDir: string): string {
  return join(dataDir, HOST_PROXY_DIR, HOST_PROXY_LOCAL_FILE);
}

/** Parses and validates local.json text; throws WEFT_ERR_PROXY_LOCAL_INVALID naming the key and value. */
export function parseLocalConfig(text: string, path = HOST_PROXY_LOCAL_FILE): HostProxyLocal {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new WeftError('WEFT_ERR_PROXY_LOCAL_INVALID', `${path}: not JSON (${(cause as Error).message})`, { key: path, value: text.slice(0, 200), cause });
  }
  const first = Value.Errors(HostProxyLocalSchema, doc).First();
  if (first !== undefined) {
    const key = first.path === '' ? path : `${path}#${first.path}`;
    throw new WeftError('WEFT_ERR_PROXY_LOCAL_INVALID', `${key}: ${first.message} (got ${JSON.stringify(first.value)})`, { key, value: first.value });
  }
  const local = doc as HostProxyLocal;
  // The schema cannot say "unique": two listeners on one port, or one service twice, would be ambiguous callers.
  const services = new Set<string>();
  const ports = new Set<number>();
  local.services.forEach((s, i) => {
    if (services.has(s.service)) throw dup(`${path}#/services/${i}/service`, s.service);
    if (ports.has(s.outboundPort)) throw dup(`${path}#/services/${i}/outboundPort`, s.outboundPort);
    services.add(s.service);
    ports.add(s.outboundPort);
  });
  return local;
}

function dup(key: string, value: unknown): WeftError {
  return new WeftError('WEFT_ERR_PROXY_LOCAL_INVALID', `${key}: used twice (got ${JSON.stringify(value)})`, { key, value });
}

/** local.json, re-read on change, last good kept. */
export class LocalConfigFile {
  readonly path: string;
  readonly #logger: Logger;
  #stamp = '';
  #current: HostProxyLocal | undefined;

  constructor(path: string, opts: { logger?: Logger } = {}) {
    this.path = path;
    this.#logger = opts.logger ?? silentLogger;
  }

  /** The document in force; undefined until a valid file was read. */
  get current(): HostProxyLocal | undefined {
    return this.#current;
  }

  /**
   * Reads the file if it changed since the last call. Returns the new
   * document when it changed and is valid; undefined otherwise. With
   * `strict`, a bad file throws (start-up: there is no last good one to keep).
   */
  check(opts: { strict?: boolean } = {}): HostProxyLocal | undefined {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      stamp = 'missing';
    }
    if (stamp === this.#stamp) return undefined;
    this.#stamp = stamp;
    if (stamp === 'missing') {
      if (this.#current !== undefined) this.#logger.warn({ path: this.path }, 'local.json disappeared: keeping the last good one');
      return undefined;
    }
    try {
      const next = parseLocalConfig(readFileSync(this.path, 'utf8'), this.path);
      this.#current = next;
      this.#logger.info({ path: this.path, generation: next.generation, services: next.services }, 'local.json loaded');
      return next;
    } catch (err) {
      const coded =
        err instanceof WeftError ? err : new WeftError('WEFT_ERR_PROXY_LOCAL_INVALID', `${this.path}: ${(err as Error).message}`, { key: this.path, cause: err });
      if (opts.strict === true) throw coded;
      this.#logger.error({ code: coded.code, key: coded.key, err: coded.message }, 'local.json invalid: keeping the last good one');
      return undefined;
    }
  }
}
