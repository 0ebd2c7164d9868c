/**
 * Check definitions from a request body (a service's Check/Checks, or
 * /v1/agent/check/register) into what the runner executes, validated with
 * Consul's rules and messages (structs.CheckType.Validate).
 */
import { durationField } from '../duration.js';
import { badRequest } from '../http-error.js';
import { bool, type JsonObject, optStr, str, uint } from '../json-body.js';
import { CHECK_STATUSES, type CheckDefinition, type CheckStatus } from '../state/types.js';

/** A check as requested, before it is given its ID and service. */
export interface ParsedCheck {
  readonly checkId?: string;
  readonly name?: string;
  readonly notes: string;
  readonly status?: CheckStatus;
  readonly serviceId?: string;
  readonly type: 'ttl' | 'http' | 'tcp';
  readonly definition: CheckDefinition;
}

/** Floors the agent applies, mirroring Consul's (checks.MinInterval is 1s). */
export interface CheckLimits {
  readonly intervalMinMs: number;
}

/** Consul's default HTTP/TCP timeout. */
export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

const UNSUPPORTED = ['Args', 'ScriptArgs', 'Script', 'DockerContainerID', 'GRPC', 'H2PING', 'UDP', 'OSService', 'AliasNode', 'AliasService'];

/** Parses one check object; throws 400 "Invalid check: ..." like Consul. */
export function parseCheck(raw: JsonObject, limits: CheckLimits): ParsedCheck {
  for (const field of UNSUPPORTED) {
    if (raw[field] !== undefined && raw[field] !== null && raw[field] !== '') {
      throw badRequest(`Invalid check: ${field} checks are not supported by the weft dev agent (only HTTP, TCP and TTL)`);
    }
  }
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
  const intervalCheck = (http ?? '') !== '' || (tcp ?? '') !== '';

  if ((intervalMs ?? 0) > 0 && (ttlMs ?? 0) > 0) throw badRequest('Invalid check: Interval and TTL cannot both be specified');
  if (intervalCheck && (intervalMs ?? 0) <= 0) {
    throw badRequest('Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC checks');
  }
  if (!intervalCheck && (ttlMs ?? 0) <= 0) throw badRequest('Invalid check: TTL must be > 0 for TTL checks');

  const statusText = str(raw, 'Status');
  if (statusText !== '' && !CHECK_STATUSES.includes(statusText as CheckStatus)) throw badRequest('Bad check status');

  if (intervalCheck && intervalMs! < limits.intervalMinMs) intervalMs = limits.intervalMinMs; // Consul raises it too, with a warning
  const timeoutGiven = ms('Timeout');
  const type = (http ?? '') !== '' ? 'http' : (tcp ?? '') !== '' ? 'tcp' : 'ttl';

  const definition: CheckDefinition = {
    kind: type,
    ...(type === 'http' ? httpFields(raw, http!) : {}),
    ...(type === 'tcp' ? { tcp: tcp! } : {}),
    ...(intervalCheck ? { intervalMs: intervalMs!, timeoutMs: timeoutGiven ?? Math.min(intervalMs!, DEFAULT_CHECK_TIMEOUT_MS) } : {}),
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
