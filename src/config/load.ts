/**
 * weft's configuration: one schema (src/config/schema.ts), defaults in one
 * commented place, validated once at start-up and frozen (as fastify does).
 * Precedence: flags > environment > config file > defaults. Every error names
 * the bad key, the value and where it came from.
 *
 * Validation runs Ajv's standalone code for the schema, generated at
 * development time (src/config/validator.generated.ts, `npm run gen:config`):
 * the same defaults, coercions and messages as compiling the schema with Ajv,
 * without loading TypeBox or Ajv or compiling at start, which cost the proxy
 * ~8 MB of RSS (proxy/README.md, "Runtime and hot path"). yaml is loaded only
 * when there is a config file.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import type { Config } from './schema.js';
import { CONFIG_ENUMS, validate as generatedValidate } from './validator.generated.js';
import {
  ENV_CONSUL_HTTP_ADDR,
  ENV_CONSUL_HTTP_TOKEN,
  ENV_WEFT_ADDR,
  ENV_WEFT_CONFIG,
  ENV_WEFT_DATA_DIR,
  ENV_WEFT_DATACENTER,
  ENV_WEFT_DEV_CONSUL_BIND,
  ENV_WEFT_DEV_CONSUL_PORT,
  ENV_WEFT_LOG_FORMAT,
  ENV_WEFT_LOG_LEVEL,
  ENV_WEFT_NODE_NAME,
  ENV_WEFT_TOKEN,
} from '../../base/env.js';
import { WeftError } from '../../base/errors.js';

export type { Config };

/** Where a value came from, for error messages. */
export type Source = 'flag' | 'env' | 'file' | 'default';

/** Environment variable -> config path. */
const ENV_MAP: ReadonlyArray<readonly [string, string]> = [
  [ENV_CONSUL_HTTP_ADDR, 'consul.address'],
  [ENV_CONSUL_HTTP_TOKEN, 'consul.token'],
  [ENV_WEFT_DATA_DIR, 'dataDir'],
  [ENV_WEFT_DATACENTER, 'datacenter'],
  [ENV_WEFT_NODE_NAME, 'nodeName'],
  [ENV_WEFT_LOG_LEVEL, 'log.level'],
  [ENV_WEFT_LOG_FORMAT, 'log.format'],
  [ENV_WEFT_DEV_CONSUL_BIND, 'devConsul.bind'],
  [ENV_WEFT_DEV_CONSUL_PORT, 'devConsul.port'],
  [ENV_WEFT_ADDR, 'client.address'],
  [ENV_WEFT_TOKEN, 'client.token'],
];

/** The schema's validator: fills defaults, coerces strings from flags and the environment, keeps its errors on `.errors`. */
const validate = generatedValidate as unknown as ValidateFunction<Config>;

const require = createRequire(import.meta.url);

export interface LoadOptions {
  /** Flag values by config path, e.g. `{ 'devConsul.port': 8501 }`. Undefined values are ignored. */
  flags?: Record<string, unknown>;
  /** How the user spelled each flag, by config path, for error messages (default `--<path>`). */
  flagNames?: Record<string, string>;
  /** The environment; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Config file path; defaults to $WEFT_CONFIG, else none. */
  file?: string;
}

/** Loads, merges, validates and freezes the configuration. Throws WEFT_ERR_CONFIG_* with the key and value. */
export function loadConfig(opts: LoadOptions = {}): Readonly<Config> {
  const env = opts.env ?? process.env;
  const origin = new Map<string, { source: Source; name: string }>();
  const merged: Record<string, unknown> = {};

  const file = opts.file ?? env[ENV_WEFT_CONFIG];
  if (file !== undefined && file !== '') {
    const fromFile = readConfigFile(file);
    for (const [path, value] of flatten(fromFile)) {
      setPath(merged, path, value);
      origin.set(path, { source: 'file', name: file });
    }
  }
  for (const [name, path] of ENV_MAP) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(merged, path, value);
    origin.set(path, { source: 'env', name });
  }
  for (const [path, value] of Object.entries(opts.flags ?? {})) {
    if (value === undefined) continue;
    setPath(merged, path, value);
    origin.set(path, { source: 'flag', name: opts.flagNames?.[path] ?? `--${path}` });
  }

  if (!validate(merged)) {
    const err = validate.errors!.find((e) => e.keyword === 'anyOf') ?? validate.errors![0]!;
    let path = err.instancePath.replace(/^\//, '').replaceAll('/', '.');
    if (err.keyword === 'additionalProperties') {
      path = [path, (err.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join('.');
      const from = origin.get(path);
      throw new WeftError('WEFT_ERR_CONFIG_INVALID', `${path}: unknown key${from ? ` (from ${from.source} ${from.name})` : ''}`, {
        key: path,
        value: getPath(merged, path),
      });
    }
    const value = getPath(merged, path);
    const from = origin.get(path);
    const reason = err.keyword === 'anyOf' ? `must be one of ${allowed(path)}` : (err.message ?? 'is invalid');
    throw new WeftError(
      'WEFT_ERR_CONFIG_INVALID',
      `${path}: ${reason} (got ${JSON.stringify(value)}${from ? ` from ${from.source} ${from.name}` : ''})`,
      { key: path, value },
    );
  }
  return deepFreeze(merged as Config);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new WeftError('WEFT_ERR_CONFIG_FILE', `config file ${file}: ${(cause as Error).message}`, { key: 'config', value: file, cause });
  }
  // YAML is a superset of JSON: one parser for both. Loaded here, not at start: a process without a config file never needs it.
  const { parse } = require('yaml') as typeof import('yaml');
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (cause) {
    throw new WeftError('WEFT_ERR_CONFIG_FILE', `config file ${file}: ${(cause as Error).message}`, { key: 'config', value: file, cause });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new WeftError('WEFT_ERR_CONFIG_FILE', `config file ${file}: must hold a mapping of keys`, { key: 'config', value: file });
  }
  return parsed as Record<string, unknown>;
}

function allowed(path: string): string {
  return (CONFIG_ENUMS[path] ?? []).join(', ');
}

function flatten(obj: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(...flatten(v as Record<string, unknown>, path));
    else out.push([path, v]);
  }
  return out;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let node: unknown = obj;
  for (const p of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[p];
  return node;
}

function deepFreeze<T>(obj: T): T {
  if (obj !== null && typeof obj === 'object') {
    for (const v of Object.values(obj)) deepFreeze(v);
    Object.freeze(obj);
  }
  return obj;
}
