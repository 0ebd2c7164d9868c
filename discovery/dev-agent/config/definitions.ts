/**
 * Services and checks from config files: turned into the bodies the HTTP API
 * takes, checked with the agent's own rules before the agent starts (so a bad
 * file stops `weft dev-consul` before it listens), and registered as Consul
 * registers them, as local definitions: script checks among them need only
 * `enable_local_script_checks`. The IDs registered from files are kept in
 * `<dataDir>/config-registrations.json`, so a service taken out of the files
 * leaves the catalog at the next start or reload, as in Consul, where
 * file-defined services are never persisted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../../base/atomic-write.js';
import { WeftError } from '../../../base/errors.js';
import type { Logger } from '../../../base/log.js';
import type { LocalAgent } from '../agent.js';
import { parseCheck, type ScriptCheckPolicy } from '../checks/definition.js';
import { ConsulHttpError } from '../http-error.js';
import type { JsonObject } from '../json-body.js';
import type { Located, LocatedService } from './read.js';
import { CHECK_KEYS, SERVICE_KEYS, TAGGED_ADDRESS_KEYS, WEIGHT_KEYS } from './keys.js';
import type { CheckFile } from './schema.js';

/** One service or check from a file, as an HTTP API body, with where it was written. */
export interface ConfigDefinition {
  readonly body: JsonObject;
  /** "config file /etc/consul.d/web.json: services[0]". */
  readonly origin: string;
}

/** What the config files register. */
export interface ConfigDefinitions {
  readonly services: readonly ConfigDefinition[];
  readonly checks: readonly ConfigDefinition[];
}

/** The IDs registered from config files. */
interface Registered {
  services: string[];
  checks: string[];
}

const REGISTRATIONS_FILE = 'config-registrations.json';

/** Turns a file's service into the body of PUT /v1/agent/service/register. */
export function serviceBody(s: LocatedService): JsonObject {
  const body: JsonObject = {};
  for (const [key, value] of Object.entries(s.def)) {
    if (key === 'weights') body['Weights'] = renamed(value as Record<string, unknown>, WEIGHT_KEYS);
    else if (key === 'tagged_addresses') {
      body['TaggedAddresses'] = Object.fromEntries(
        Object.entries(value as Record<string, Record<string, unknown>>).map(([k, a]) => [k, renamed(a, TAGGED_ADDRESS_KEYS)]),
      );
    } else body[SERVICE_KEYS[key]!] = value;
  }
  if (s.checks.length > 0) body['Checks'] = s.checks.map((c) => checkBody(c.def));
  return body;
}

/** Turns a file's check into the body of PUT /v1/agent/check/register. */
export function checkBody(c: CheckFile): JsonObject {
  return renamed(c as Record<string, unknown>, CHECK_KEYS);
}

/**
 * Checks every definition with the agent's rules (service name, check kinds,
 * intervals, the script check policy for local definitions). Throws
 * WEFT_ERR_DEV_CONSUL_CONFIG naming the file and the key.
 */
export function checkDefinitions(
  services: ReadonlyArray<{ s: LocatedService; origin: string }>,
  checks: ReadonlyArray<{ c: Located<CheckFile>; origin: string }>,
  policy: ScriptCheckPolicy,
): ConfigDefinitions {
  const limits = { intervalMinMs: 1, ...policy };
  const outServices = services.map(({ s, origin }) => {
    if ((s.def.name ?? '') === '') throw configError(origin, `${s.where}.name`, s.def.name, 'Missing service name');
    for (const c of s.checks) tryParse(origin, c.where, checkBody(c.def), limits);
    return { body: serviceBody(s), origin: `${origin}: ${s.where}` };
  });
  const outChecks = checks.map(({ c, origin }) => {
    if ((c.def.name ?? '') === '') throw configError(origin, `${c.where}.name`, c.def.name, 'Missing check name');
    const body = checkBody(c.def);
    tryParse(origin, c.where, body, limits);
    return { body, origin: `${origin}: ${c.where}` };
  });
  return { services: outServices, checks: outChecks };
}

/**
 * Registers the definitions on the agent, replacing those of the previous
 * start or reload (services and checks no longer defined are removed).
 * Throws WEFT_ERR_DEV_CONSUL_CONFIG when the agent refuses one (a check's
 * service_id that names no service, for instance).
 */
export function applyDefinitions(agent: LocalAgent, dataDir: string, defs: ConfigDefinitions, logger: Logger): void {
  const before = readRegistered(dataDir);
  const now: Registered = { services: [], checks: [] };
  for (const d of defs.services) {
    apply(d, () => agent.registerService(d.body, true, 'local'));
    now.services.push(String(d.body['ID'] || d.body['Name']));
  }
  for (const d of defs.checks) {
    apply(d, () => agent.registerCheck(d.body, 'local'));
    now.checks.push(String(d.body['CheckID'] || d.body['Name']));
  }
  for (const id of before.checks) {
    if (now.checks.includes(id) || agent.store.check(agent.node, id) === undefined) continue;
    agent.deregisterCheck(id);
    logger.info({ checkId: id }, 'dev-consul: check no longer in the config files, removed');
  }
  for (const id of before.services) {
    if (now.services.includes(id) || agent.store.service(agent.node, id)?.local !== true) continue;
    agent.deregisterService(id);
    logger.info({ service: id }, 'dev-consul: service no longer in the config files, removed');
  }
  writeFileAtomicSync(join(dataDir, REGISTRATIONS_FILE), `${JSON.stringify(now)}\n`);
}

function apply(d: ConfigDefinition, register: () => void): void {
  try {
    register();
  } catch (err) {
    if (!(err instanceof ConsulHttpError)) throw err;
    const [origin, where] = splitOrigin(d.origin);
    throw configError(origin, where, undefined, err.message);
  }
}

function readRegistered(dataDir: string): Registered {
  try {
    const r = JSON.parse(readFileSync(join(dataDir, REGISTRATIONS_FILE), 'utf8')) as Partial<Registered>;
    return { services: stringsOf(r.services), checks: stringsOf(r.checks) };
  } catch {
    return { services: [], checks: [] };
  }
}

function stringsOf(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function tryParse(origin: string, where: string, body: JsonObject, limits: Parameters<typeof parseCheck>[1]): void {
  try {
    parseCheck(body, limits, 'local');
  } catch (err) {
    if (!(err instanceof ConsulHttpError)) throw err;
    throw configError(origin, where, undefined, err.message);
  }
}

function renamed(obj: Record<string, unknown>, table: Readonly<Record<string, string>>): JsonObject {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [table[k] ?? k, v]));
}

function splitOrigin(origin: string): [string, string] {
  const at = origin.lastIndexOf(': ');
  return at === -1 ? [origin, ''] : [origin.slice(0, at), origin.slice(at + 2)];
}

function configError(origin: string, key: string, value: unknown, reason: string): WeftError {
  const got = value === undefined ? '' : ` (got ${JSON.stringify(value)})`;
  return new WeftError('WEFT_ERR_DEV_CONSUL_CONFIG', `${origin}: ${key}: ${reason}${got}`, { key, value });
}
