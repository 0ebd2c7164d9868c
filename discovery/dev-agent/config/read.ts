/**
 * Reads Consul agent configuration files as `consul agent` does:
 * `-config-file` paths and `-config-dir` directories in the order given, a
 * directory's `*.json` and `*.hcl` files in lexical order (sub-directories
 * and other files skipped), the format from the extension unless
 * `-config-format` says otherwise. Each file is checked against schema.ts
 * on its own, so an error names the file and the key; keys the dev agent
 * does not honour come back as warnings, not errors.
 *
 * HCL is parsed with @cdktn/hcl2json (HashiCorp's HCL 2 parser compiled to
 * WebAssembly; loaded only when an .hcl file or -hcl fragment is read, as it
 * costs about a second and ~100 MB). HCL 2 reads the Consul files people
 * write (`key = value`, blocks such as `ports { http = 8500 }`, lists of
 * objects); HCL 1-only forms (quoted keys inside blocks) fail with the
 * parser's message. Blocks come back as lists; a list holding a single object
 * is taken as that object, as Consul's own decoder does, except for
 * `services` and `checks`, which are lists.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { WeftError } from '../../../base/errors.js';
import { CHECK_ALIASES, CHECK_KEYS, SERVICE_KEYS } from './keys.js';
import {
  type CheckFile,
  CheckFileSchema,
  type ConsulConfigFile,
  ConsulConfigFileSchema,
  DEEP_NESTED_KEYS,
  NESTED_KEYS,
  type ServiceFile,
  ServiceFileSchema,
} from './schema.js';

/** Where configuration comes from, in the order given on the command line. */
export type ConfigSource = { readonly kind: 'file' | 'dir'; readonly path: string } | { readonly kind: 'hcl'; readonly text: string };

/** Consul's -config-format. */
export type ConfigFormat = 'json' | 'hcl';

/** A service or check with where it was written (`services[1]`, `service.check`). */
export interface Located<T> {
  readonly def: T;
  readonly where: string;
}

/** A service, and its checks (from `check` and `checks`) with their places. */
export interface LocatedService extends Located<Omit<ServiceFile, 'check' | 'checks'>> {
  readonly checks: ReadonlyArray<Located<CheckFile>>;
}

/** One file (or -hcl fragment), checked. */
export interface ConfigFragment {
  /** "config file /etc/consul.d/web.json" or "flag -hcl". */
  readonly origin: string;
  /** The honoured top-level keys other than services and checks. */
  readonly values: Omit<ConsulConfigFile, 'service' | 'services' | 'check' | 'checks'>;
  readonly services: readonly LocatedService[];
  readonly checks: ReadonlyArray<Located<CheckFile>>;
  /** Keys present but not honoured, as paths (`retry_join`, `ports.dns`, `services[0].connect`). */
  readonly ignored: readonly string[];
  /** Other things worth a warning (a token in a file others can read). */
  readonly notes?: readonly string[];
}

const require = createRequire(import.meta.url);

/** Reads every source; throws WEFT_ERR_DEV_CONSUL_CONFIG naming the file and key on the first problem. */
export async function readConfigSources(sources: readonly ConfigSource[], format?: ConfigFormat): Promise<ConfigFragment[]> {
  const out: ConfigFragment[] = [];
  for (const source of sources) {
    if (source.kind === 'hcl') {
      out.push(checkFragment('flag -hcl', await parseText('flag -hcl', source.text, 'hcl')));
      continue;
    }
    for (const file of source.kind === 'dir' ? filesOf(source.path) : [source.path]) {
      const origin = `config file ${file}`;
      const fileFormat = format ?? formatOf(file);
      if (fileFormat === undefined) {
        throw fileError(origin, file, 'unknown format: name the file *.json or *.hcl, or pass -config-format json|hcl');
      }
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (cause) {
        throw fileError(origin, file, `cannot read it: ${(cause as Error).message}`, cause);
      }
      const fragment = checkFragment(origin, await parseText(origin, text, fileFormat));
      out.push(tokenFileNote(fragment, file));
    }
  }
  return out;
}

/** A file holding ACL tokens that others can read gets a warning: a token is a password. */
function tokenFileNote(fragment: ConfigFragment, file: string): ConfigFragment {
  const tokens = (fragment.values as { acl?: { tokens?: Record<string, unknown> } }).acl?.tokens;
  if (tokens === undefined || Object.keys(tokens).length === 0) return fragment;
  let mode = 0;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return fragment;
  }
  if ((mode & 0o077) === 0) return fragment;
  return { ...fragment, notes: [`${fragment.origin} holds ACL tokens and is readable by others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it`] };
}

/** A directory's config files: *.json and *.hcl, regular files only, in lexical (byte) order. */
function filesOf(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (cause) {
    throw fileError(`config dir ${dir}`, dir, `cannot read it: ${(cause as Error).message}`, cause);
  }
  return names
    .filter((n) => formatOf(n) !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n))
    .filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    });
}

function formatOf(file: string): ConfigFormat | undefined {
  const ext = extname(file);
  return ext === '.json' ? 'json' : ext === '.hcl' ? 'hcl' : undefined;
}

async function parseText(origin: string, text: string, format: ConfigFormat): Promise<Record<string, unknown>> {
  let value: unknown;
  if (format === 'json') {
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw fileError(origin, origin, `not valid JSON: ${(cause as Error).message}`, cause);
    }
  } else {
    const { parse } = require('@cdktn/hcl2json') as { parse(name: string, text: string): Promise<Record<string, unknown>> };
    try {
      value = unwrapBlocks(await parse(origin, text));
    } catch (cause) {
      throw fileError(origin, origin, `not valid HCL: ${(cause as Error).message.replace(/^parse config: /, '')}`, cause);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fileError(origin, origin, 'must hold one object of configuration keys');
  return value as Record<string, unknown>;
}

/** HCL blocks arrive as lists of objects: a list of one object is that object, except where Consul expects a list. */
function unwrapBlocks(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => unwrapBlocks(v));
    if (items.length === 1 && isPlainObject(items[0]) && key !== 'services' && key !== 'checks') return items[0];
    return items;
  }
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapBlocks(v, k)]));
  return value;
}

/** Sets unknown keys aside, checks the rest with the schema, and lists the services and checks with their places. */
function checkFragment(origin: string, raw: Record<string, unknown>): ConfigFragment {
  const ignored: string[] = [];
  const top: Record<string, unknown> = {};
  const honoured = new Set(Object.keys(ConsulConfigFileSchema.properties));
  for (const [key, value] of Object.entries(raw)) {
    if (!honoured.has(key)) {
      ignored.push(key);
      continue;
    }
    const nested = NESTED_KEYS[key];
    if (nested !== undefined && isPlainObject(value)) {
      const kept: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        if (!nested.includes(k)) {
          ignored.push(`${key}.${k}`);
          continue;
        }
        const deep = DEEP_NESTED_KEYS[`${key}.${k}`];
        if (deep !== undefined && isPlainObject(v)) {
          const inner: Record<string, unknown> = {};
          for (const [k2, v2] of Object.entries(v)) {
            if (deep.includes(k2)) inner[k2] = v2;
            else ignored.push(`${key}.${k}.${k2}`);
          }
          kept[k] = inner;
        } else kept[k] = v;
      }
      top[key] = kept;
    } else top[key] = value;
  }

  const services: LocatedService[] = [];
  const checks: Array<Located<CheckFile>> = [];
  for (const [where, item] of listed(origin, top, 'service', 'services')) services.push(checkService(origin, where, item, ignored));
  for (const [where, item] of listed(origin, top, 'check', 'checks')) checks.push({ def: checkCheck(origin, where, item, ignored), where });
  for (const k of ['service', 'services', 'check', 'checks']) delete top[k];

  const rest = validator('top', ConsulConfigFileSchema);
  if (!rest(top)) throw schemaError(origin, '', top, rest.errors!);
  return { origin, values: top as ConfigFragment['values'], services, checks, ignored };
}

/** The entries of a singular key (an object, or a list of them) and of its plural (a list), with their paths. */
function listed(origin: string, top: Record<string, unknown>, singular: string, plural: string): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  const one = top[singular];
  if (Array.isArray(one)) for (const [i, v] of one.entries()) out.push([`${singular}[${i}]`, v]);
  else if (one !== undefined) out.push([singular, one]);
  const many = top[plural];
  if (many !== undefined && !Array.isArray(many)) throw schemaTypeError(origin, plural, many, 'must be a list of objects');
  if (Array.isArray(many)) for (const [i, v] of many.entries()) out.push([`${plural}[${i}]`, v]);
  return out;
}

function checkService(origin: string, where: string, item: unknown, ignored: string[]): LocatedService {
  if (!isPlainObject(item)) throw schemaTypeError(origin, where, item, 'must be an object');
  const svc = canonicalKeys(item, SERVICE_KEYS, {}, where, ignored);
  const nested: Array<[string, unknown]> = listed(origin, svc, 'check', 'checks').map(([w, v]) => [`${where}.${w}`, v]);
  const checks = nested.map(([w, v]) => ({ def: checkCheck(origin, w, v, ignored), where: w }));
  delete svc['check'];
  delete svc['checks'];
  for (const key of ['weights', 'tagged_addresses'] as const) {
    const v = svc[key];
    if (key === 'weights' && isPlainObject(v)) svc[key] = lowerKeys(v);
    if (key === 'tagged_addresses' && isPlainObject(v)) {
      svc[key] = Object.fromEntries(Object.entries(v).map(([k, a]) => [k, isPlainObject(a) ? lowerKeys(a) : a]));
    }
  }
  const v = validator('service', ServiceFileSchema);
  if (!v(svc)) throw schemaError(origin, where, svc, v.errors!);
  return { def: svc as Omit<ServiceFile, 'check' | 'checks'>, where, checks };
}

function checkCheck(origin: string, where: string, item: unknown, ignored: string[]): CheckFile {
  if (!isPlainObject(item)) throw schemaTypeError(origin, where, item, 'must be an object');
  const chk = canonicalKeys(item, CHECK_KEYS, CHECK_ALIASES, where, ignored);
  const v = validator('check', CheckFileSchema);
  if (!v(chk)) throw schemaError(origin, where, chk, v.errors!);
  return chk as CheckFile;
}

/**
 * Consul matches service and check keys ignoring case and underscores
 * (`ServiceID` = `service_id`): map each key to its config spelling, and set
 * unknown ones aside. Values (Meta, Header) keep their keys.
 */
function canonicalKeys(
  obj: Record<string, unknown>,
  table: Readonly<Record<string, string>>,
  aliases: Readonly<Record<string, string>>,
  where: string,
  ignored: string[],
): Record<string, unknown> {
  const lookup = new Map<string, string>();
  for (const [snake, api] of Object.entries(table)) {
    lookup.set(squash(snake), snake);
    lookup.set(squash(api), snake);
  }
  for (const [alias, snake] of Object.entries(aliases)) lookup.set(squash(alias), snake);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const canonical = lookup.get(squash(k));
    if (canonical === undefined) ignored.push(`${where}.${k}`);
    else out[canonical] = v;
  }
  return out;
}

function squash(key: string): string {
  return key.toLowerCase().replaceAll('_', '');
}

function lowerKeys(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k.toLowerCase(), v]));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const validators = new Map<string, ValidateFunction>();

function validator(name: string, schema: object): ValidateFunction {
  let v = validators.get(name);
  if (v === undefined) {
    // Loaded only when there is a config file to check: a plain `weft dev-consul` never pays for Ajv.
    const { Ajv } = require('ajv') as typeof import('ajv');
    v = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false }).compile(schema);
    validators.set(name, v);
  }
  return v;
}

function schemaError(origin: string, where: string, value: Record<string, unknown>, errors: readonly ErrorObject[]): WeftError {
  const e = errors[0]!;
  const parts = e.instancePath.split('/').slice(1);
  let node: unknown = value;
  for (const p of parts) node = (node as Record<string, unknown> | undefined)?.[p];
  const key = [where, ...parts.map((p) => (/^\d+$/.test(p) ? `[${p}]` : p))].filter(Boolean).join('.').replaceAll('.[', '[');
  const reason = e.keyword === 'pattern' ? 'is not a valid value' : (e.message ?? 'is invalid');
  return schemaTypeError(origin, key, node, reason);
}

function schemaTypeError(origin: string, key: string, value: unknown, reason: string): WeftError {
  return new WeftError('WEFT_ERR_DEV_CONSUL_CONFIG', `${origin}: ${key}: ${reason} (got ${JSON.stringify(value)})`, { key, value });
}

function fileError(origin: string, key: string, reason: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_ERR_DEV_CONSUL_CONFIG', `${origin}: ${reason}`, cause === undefined ? { key } : { key, cause });
}
