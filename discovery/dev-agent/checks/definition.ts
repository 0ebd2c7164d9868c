/**
 * Check definitions from a request body (a service's Check/Checks, or
 * /v1/agent/check/register) into what the runner executes, validated with
 * Consul's rules and messages (structs.CheckType.Validate).
 *
 * Script checks (`Args`/`ScriptArgs`, or the older `Script`) run only where the
 * operator allowed them, as in Consul: `enable_local_script_checks` for checks
 * from config files, `enable_script_checks` for those too and for checks
 * registered over the HTTP API (which Consul counts as remote even on
 * loopback). Otherwise the registration fails with Consul's message.
 */
import { durationField } from '../duration.js';
import { badRequest, serverError } from '../http-error.js';
import { bool, type JsonObject, optStr, str, uint } from '../json-body.js';
import { CHECK_STATUSES, type CheckDefinition, type CheckSource, type CheckStatus } from '../state/types.js';
import { DEFAULT_SCRIPT_TIMEOUT_MS, type ScriptCommand } from './script.js';

export type { CheckSource, ScriptSpec } from '../state/types.js';

/** Consul's enable_script_checks / enable_local_script_checks. */
export interface ScriptCheckPolicy {
  /** Scripts from any source (Consul's enable_script_checks). */
  readonly enableScriptChecks?: boolean;
  /** Scripts from config files only (Consul's enable_local_script_checks). */
  readonly enableLocalScriptChecks?: boolean;
}

/** Consul's refusal for a script check from a config file. */
export const SCRIPTS_DISABLED_LOCAL =
  "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";
/** Consul's refusal for a script check registered over the HTTP API. */
export const SCRIPTS_DISABLED_REMOTE = "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true";

/** True when the policy lets a script check from `source` run. */
export function scriptAllowed(policy: ScriptCheckPolicy, source: CheckSource): boolean {
  return policy.enableScriptChecks === true || (source === 'local' && policy.enableLocalScriptChecks === true);
}

/** A check as requested, before it is given its ID and service. */
export interface ParsedCheck {
  readonly checkId?: string;
  readonly name?: string;
  readonly notes: string;
  readonly status?: CheckStatus;
  readonly serviceId?: string;
  readonly type: 'ttl' | 'http' | 'tcp' | 'script';
  readonly definition: CheckDefinition;
}

/** Floors the agent applies, mirroring Consul's (checks.MinInterval is 1s), and its script check policy. */
export interface CheckLimits extends ScriptCheckPolicy {
  readonly intervalMinMs: number;
}

/** Consul's default HTTP/TCP timeout. */
export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

const UNSUPPORTED = ['DockerContainerID', 'GRPC', 'H2PING', 'UDP', 'OSService', 'AliasNode', 'AliasService'];

/**
 * Parses one check object; throws 400 "Invalid check: ..." like Consul, and
 * Consul's 500 for a script check its source may not run (`source`: the HTTP
 * API unless it came from a config file).
 */
export function parseCheck(raw: JsonObject, limits: CheckLimits, source: CheckSource = 'remote'): ParsedCheck {
  for (const field of UNSUPPORTED) {
    if (raw[field] !== undefined && raw[field] !== null && raw[field] !== '') {
      throw badRequest(`Invalid check: ${field} checks are not supported by the weft dev agent (only script, HTTP, TCP and TTL)`);
    }
  }
  const run = scriptCommand(raw);
  const ms = (field: string): number | undefined => {
    try {
      return durationField(raw[field], field);
    } catch (err) {
      throw badRequest(`Request decode failed: ${(err as Error).message}`);
    }
  };
  const http = optStr(raw, 'HTTP');
  const tcp = optStr(raw, 'TCP');
  let intervalMs = ms('Interval');
  const ttlMs = ms('TTL');
  const intervalCheck = run !== undefined || (http ?? '') !== '' || (tcp ?? '') !== '';

  if ((intervalMs ?? 0) > 0 && (ttlMs ?? 0) > 0) throw badRequest('Invalid check: Interval and TTL cannot both be specified');
  if (intervalCheck && (intervalMs ?? 0) <= 0) {
    throw badRequest('Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC checks');
  }
  if (!intervalCheck && (ttlMs ?? 0) <= 0) throw badRequest('Invalid check: TTL must be > 0 for TTL checks');

  const statusText = str(raw, 'Status');
  if (statusText !== '' && !CHECK_STATUSES.includes(statusText as CheckStatus)) throw badRequest('Bad check status');

  if (run !== undefined && !scriptAllowed(limits, source)) {
    throw serverError(source === 'local' ? SCRIPTS_DISABLED_LOCAL : SCRIPTS_DISABLED_REMOTE);
  }

  if (intervalCheck && intervalMs! < limits.intervalMinMs) intervalMs = limits.intervalMinMs; // Consul raises it too, with a warning
  const timeoutGiven = ms('Timeout');
  const type = run !== undefined ? 'script' : (http ?? '') !== '' ? 'http' : (tcp ?? '') !== '' ? 'tcp' : 'ttl';
  // Consul: scripts default to 30 s, HTTP and TCP to 10 s (never longer than the interval here).
  const defaultTimeout = type === 'script' ? DEFAULT_SCRIPT_TIMEOUT_MS : Math.min(intervalMs ?? 0, DEFAULT_CHECK_TIMEOUT_MS);

  const definition: CheckDefinition = {
    kind: type,
    ...(run === undefined ? {} : { script: { ...run, source } }),
    ...(type === 'http' ? httpFields(raw, http!) : {}),
    ...(type === 'tcp' ? { tcp: tcp! } : {}),
    ...(intervalCheck ? { intervalMs: intervalMs!, timeoutMs: timeoutGiven !== undefined && timeoutGiven > 0 ? timeoutGiven : defaultTimeout } : {}),
    ...(type === 'ttl' ? { ttlMs: ttlMs! } : {}),
    successBeforePassing: uint(raw, 'SuccessBeforePassing'),
    failuresBeforeCritical: uint(raw, 'FailuresBeforeCritical'),
    failuresBeforeWarning: uint(raw, 'FailuresBeforeWarning', uint(raw, 'FailuresBeforeCritical')),
    ...optionalMs('deregisterCriticalServiceAfterMs', ms('DeregisterCriticalServiceAfter')),
    ...(raw['OutputMaxSize'] === undefined ? {} : { outputMaxSize: uint(raw, 'OutputMaxSize') }),
  };
  const checkId = optStr(raw, 'CheckID') ?? optStr(raw, 'ID');
  const name = optStr(raw, 'Name');
  const serviceId = optStr(raw, 'ServiceID');
  return {
    ...(checkId === undefined || checkId === '' ? {} : { checkId }),
    ...(name === undefined || name === '' ? {} : { name }),
    notes: str(raw, 'Notes'),
    ...(statusText === '' ? {} : { status: statusText as CheckStatus }),
    ...(serviceId === undefined || serviceId === '' ? {} : { serviceId }),
    type,
    definition,
  };
}

/** `Args` (or its alias `ScriptArgs`): argv, run without a shell; `Script`: a command line for the shell. */
function scriptCommand(raw: JsonObject): ScriptCommand | undefined {
  for (const field of ['Args', 'ScriptArgs']) {
    const v = raw[field];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badRequest(`Request decode failed: ${field} must be a list of strings`);
    if (v.length > 0) return { args: v as string[] };
  }
  const script = raw['Script'];
  if (script === undefined || script === null || script === '') return undefined;
  if (typeof script !== 'string') throw badRequest('Request decode failed: Script must be a string');
  return { command: script };
}

function httpFields(raw: JsonObject, url: string): Partial<CheckDefinition> {
  const header = raw['Header'];
  const out: { -readonly [K in keyof CheckDefinition]?: CheckDefinition[K] } = { http: url };
  const method = str(raw, 'Method');
  if (method !== '') out.method = method.toUpperCase();
  if (header !== undefined && header !== null) {
    if (typeof header !== 'object' || Array.isArray(header)) throw badRequest('Request decode failed: Header must map names to lists');
    const h: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(header)) {
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badRequest(`Request decode failed: Header ${k} must be a list of strings`);
      h[k] = v as string[];
    }
    out.header = h;
  }
  const body = str(raw, 'Body');
  if (body !== '') out.body = body;
  if (bool(raw, 'TLSSkipVerify')) out.tlsSkipVerify = true;
  if (bool(raw, 'DisableRedirects')) out.disableRedirects = true;
  return out;
}

function optionalMs(field: 'deregisterCriticalServiceAfterMs', value: number | undefined): Partial<CheckDefinition> {
  return value === undefined || value <= 0 ? {} : { [field]: value };
}
