/**
 * The agent's hand-off file `<dataDir>/proxy/local.json`
 * (base/contracts/host-proxy.ts): which local services call out, and on which
 * loopback port each. Checked against the contract's schema
 * (host-proxy-schema.ts) by `schemaError` below, which reports what TypeBox's
 * `Value.Errors(...).First()` would, without loading TypeBox into the proxy;
 * a bad file is WEFT_ERR_PROXY_LOCAL_INVALID naming the key
 * (`services/1/outboundPort`) and the value. `LocalConfigFile.check()`
 * re-reads it when it changed on disk and keeps the last good document when
 * the new one is bad, so a half-edited file never takes the proxy's
 * listeners away.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_PROXY_DIR, HOST_PROXY_LOCAL_FILE, type HostProxyLocal } from '../../base/contracts/host-proxy.js';
import { SERVICE_NAME_PATTERN } from '../../base/contracts/names.js';
import { WeftError } from '../../base/errors.js';
import { type Logger, silentLogger } from '../../base/log.js';

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
  const first = schemaError(doc, '');
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

/** A broken rule of the schema: where (JSON pointer, '' = the document), TypeBox's message, and the value there. */
interface SchemaError {
  readonly path: string;
  readonly message: string;
  readonly value: unknown;
}

/** Checks a value at a JSON pointer; undefined when it conforms. */
type Check = (value: unknown, path: string) => SchemaError | undefined;

/**
 * HostProxyLocalSchema written out as checks, reporting the first error in
 * TypeBox's order (object: required keys, unexpected keys, then each key in
 * schema order; array: items in order) with its messages. TypeBox's value
 * checker costs the proxy ~5 MB of RSS (proxy/README.md, "Runtime and hot
 * path"); test/src/wiring/proxy-local-config.test.ts compares this with
 * `Value.Errors(HostProxyLocalSchema, doc).First()` on generated documents.
 */
const schemaError: Check = object({
  host: string({ minLength: 1 }),
  generation: integer({ minimum: 0 }),
  services: array(
    object({
      service: string({ pattern: SERVICE_NAME_PATTERN }),
      outboundPort: integer({ minimum: 1, maximum: 65535 }),
    }),
  ),
});

/** An object with exactly these keys, all required (additionalProperties: false). */
function object(properties: Record<string, Check>): Check {
  const known = Object.keys(properties);
  return (value, path) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { path, message: 'Expected object', value };
    const doc = value as Record<string, unknown>;
    const keys = Object.getOwnPropertyNames(doc);
    for (const key of known) if (!keys.includes(key)) return { path: `${path}/${pointer(key)}`, message: 'Expected required property', value: undefined };
    for (const key of keys) if (!known.includes(key)) return { path: `${path}/${pointer(key)}`, message: 'Unexpected property', value: doc[key] };
    for (const key of known) {
      const err = properties[key]!(doc[key], `${path}/${pointer(key)}`);
      if (err !== undefined) return err;
    }
    return undefined;
  };
}

function array(items: Check): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return { path, message: 'Expected array', value };
    for (let i = 0; i < value.length; i++) {
      const err = items(value[i], `${path}/${i}`);
      if (err !== undefined) return err;
    }
    return undefined;
  };
}

function string(opts: { minLength?: number; pattern?: string }): Check {
  const regex = opts.pattern === undefined ? undefined : new RegExp(opts.pattern);
  return (value, path) => {
    if (typeof value !== 'string') return { path, message: 'Expected string', value };
    if (opts.minLength !== undefined && value.length < opts.minLength) return { path, message: `Expected string length greater or equal to ${opts.minLength}`, value };
    if (regex !== undefined && !regex.test(value)) return { path, message: `Expected string to match '${opts.pattern}'`, value };
    return undefined;
  };
}

function integer(opts: { minimum?: number; maximum?: number }): Check {
  return (value, path) => {
    if (!Number.isInteger(value)) return { path, message: 'Expected integer', value };
    const n = value as number;
    if (opts.maximum !== undefined && n > opts.maximum) return { path, message: `Expected integer to be less or equal to ${opts.maximum}`, value };
    if (opts.minimum !== undefined && n < opts.minimum) return { path, message: `Expected integer to be greater or equal to ${opts.minimum}`, value };
    return undefined;
  };
}

/** A key as a JSON pointer segment (RFC 6901), as TypeBox escapes it. */
function pointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
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
