/**
 * Container labels -> a typed service registration, as traefik decodes its
 * labels: one root prefix (`weft.`), an allow-list of keys, and every bad label
 * reported at once so the agent can log them all and skip only that container.
 * Registrator's SERVICE_* conventions are read too; weft.* wins when both say
 * the same thing. The table of keys lives in discovery/README.md.
 */
import { type Static, Type } from '@sinclair/typebox';
import { invalid, WeftError } from '../errors.js';
import { formatDuration, parseDuration } from '../duration.js';
import { DEFAULT_WEIGHT, isServiceName, isVersion, MAX_WEIGHT, MIN_WEIGHT } from './names.js';

/** The typed result of decoding; also usable to validate job specs. */
export const RegistrationSchema = Type.Object({
  service: Type.String(),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  weight: Type.Integer({ minimum: MIN_WEIGHT, maximum: MAX_WEIGHT }),
  version: Type.String(),
  tags: Type.Array(Type.String()),
  check: Type.Object({
    /** `{ path, tls }` is resolved against the instance's address and port; `{ url }` is used as is. */
    http: Type.Optional(Type.Union([Type.Object({ url: Type.String() }), Type.Object({ path: Type.String(), tls: Type.Boolean() })])),
    /** `host` defaults to the instance's address. */
    tcp: Type.Optional(Type.Object({ host: Type.Optional(Type.String()), port: Type.Integer() })),
    intervalMs: Type.Integer(),
    timeoutMs: Type.Integer(),
    failures: Type.Integer(),
    successes: Type.Integer(),
  }),
  /** `localPort` absent: reached through the proxy's shared outbound port by name. */
  upstreams: Type.Array(Type.Object({ service: Type.String(), localPort: Type.Optional(Type.Integer()) })),
});

export type Registration = Static<typeof RegistrationSchema>;
export type CheckSpec = Registration['check'];
export type Upstream = Registration['upstreams'][number];

/** The root of weft's labels: every key under it must be one of LABEL_KEYS. */
export const LABEL_PREFIX = 'weft.';

/** Each label key weft knows, by what it sets: the one spelling of every key. */
export const LABEL = {
  service: 'weft.service',
  port: 'weft.port',
  weight: 'weft.weight',
  version: 'weft.version',
  tags: 'weft.tags',
  /** The health check, by CheckSpec field (a job spec's `check` block uses the same field names). */
  check: {
    http: 'weft.check.http',
    tcp: 'weft.check.tcp',
    interval: 'weft.check.interval',
    timeout: 'weft.check.timeout',
    failures: 'weft.check.failures',
    successes: 'weft.check.successes',
  },
  upstreams: 'weft.upstreams',
} as const;

/** Label keys weft knows; anything else under `weft.` is a typo. */
export const LABEL_KEYS = [
  LABEL.service,
  LABEL.port,
  LABEL.weight,
  LABEL.version,
  LABEL.tags,
  LABEL.check.http,
  LABEL.check.tcp,
  LABEL.check.interval,
  LABEL.check.timeout,
  LABEL.check.failures,
  LABEL.check.successes,
  LABEL.upstreams,
] as const;
export type LabelKey = (typeof LABEL_KEYS)[number];

/** Defaults, in one place (README repeats them). */
export const LABEL_DEFAULTS = {
  weight: DEFAULT_WEIGHT,
  version: 'latest',
  intervalMs: 10_000,
  timeoutMs: 2_000,
  failures: 3,
  successes: 1,
} as const;

/** What the caller knows about the container beyond its labels. */
export interface DecodeContext {
  /** Used when no label names the service (Registrator uses the image's base name). */
  defaultName?: string;
  /** Used when weft.version is absent (the agent passes the image tag). */
  defaultVersion?: string;
  /** The container's exposed ports: one of them is the port when no label names it. */
  exposedPorts?: readonly number[];
}

/** Decoding outcome: a registration, a deliberate skip, or every error found. */
export type DecodeResult =
  | { ok: true; registration: Registration; ignored: string[] }
  | { ok: true; registration: null; skipped: 'unlabelled' | 'ignored'; ignored: string[] }
  | { ok: false; errors: WeftError[] };

/** Registrator's key suffix for each weft key it has an equivalent of. */
const REGISTRATOR: Partial<Record<LabelKey, string>> = {
  [LABEL.service]: 'NAME',
  [LABEL.tags]: 'TAGS',
  [LABEL.check.http]: 'CHECK_HTTP',
  [LABEL.check.tcp]: 'CHECK_TCP',
  [LABEL.check.interval]: 'CHECK_INTERVAL',
  [LABEL.check.timeout]: 'CHECK_TIMEOUT',
};
/** Registrator suffixes weft reads besides the ones above. */
const REGISTRATOR_EXTRA = new Set(['IGNORE', 'CHECK_HTTPS']);
const REGISTRATOR_KEY = /^SERVICE_(?:([0-9]+)_)?([A-Z0-9_]+)$/;

/** Common wrong names that edit distance would not catch. */
const ALIASES: Readonly<Record<string, LabelKey>> = {
  'weft.name': LABEL.service,
  'weft.check.path': LABEL.check.http,
  'weft.healthcheck': LABEL.check.http,
  'weft.check.retries': LABEL.check.failures,
  'weft.check.threshold': LABEL.check.failures,
};

const TAG = /^\S{1,255}$/;
const HOST = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 3_600_000;

/** Decodes one container's labels. Never throws for bad input: all problems come back in `errors`. */
export function decodeLabels(labels: Readonly<Record<string, string>>, context: DecodeContext = {}): DecodeResult {
  const errors: WeftError[] = [];
  const ignored: string[] = [];
  const weft = new Map<LabelKey, string>();
  const general = new Map<string, { key: string; value: string }>();
  const byPort = new Map<number, Map<string, { key: string; value: string }>>();

  for (const [key, raw] of Object.entries(labels)) {
    const value = raw.trim();
    if (key.toLowerCase().startsWith(LABEL_PREFIX)) {
      if ((LABEL_KEYS as readonly string[]).includes(key)) weft.set(key as LabelKey, value);
      else errors.push(unknownKey(key, value));
      continue;
    }
    const m = REGISTRATOR_KEY.exec(key);
    if (m === null) continue; // someone else's label
    const suffix = m[2]!;
    const known = Object.values(REGISTRATOR).includes(suffix) || REGISTRATOR_EXTRA.has(suffix);
    if (!known) {
      ignored.push(key);
      continue;
    }
    if (m[1] === undefined) general.set(suffix, { key, value });
    else {
      const port = Number(m[1]);
      if (!byPort.has(port)) byPort.set(port, new Map());
      byPort.get(port)!.set(suffix, { key, value });
    }
  }

  if (weft.size === 0 && general.size === 0 && byPort.size === 0) {
    return errors.length > 0 ? { ok: false, errors } : { ok: true, registration: null, skipped: 'unlabelled', ignored };
  }
  // Registrator's opt-out binds Registrator-style containers only: weft.* labels win.
  if (weft.size === 0 && general.has('IGNORE') && general.get('IGNORE')!.value !== '') {
    return { ok: true, registration: null, skipped: 'ignored', ignored };
  }

  const ignoredPorts = new Set([...byPort].filter(([, e]) => (e.get('IGNORE')?.value ?? '') !== '').map(([p]) => p));
  const openPorts = [...byPort.keys(), ...(context.exposedPorts ?? [])].filter((p) => !ignoredPorts.has(p));
  if (weft.size === 0 && ignoredPorts.size > 0 && openPorts.length === 0) {
    return { ok: true, registration: null, skipped: 'ignored', ignored };
  }
  const port = resolvePort(weft.get(LABEL.port), byPort, ignoredPorts, context, errors);
  for (const [p, entries] of byPort) {
    if (p !== port) for (const e of entries.values()) ignored.push(e.key);
  }

  /** The label that sets `key`: weft.* first, then SERVICE_<port>_*, then SERVICE_*. */
  const pick = (key: LabelKey, suffix = REGISTRATOR[key]): { key: string; value: string } | undefined => {
    const own = weft.get(key);
    if (own !== undefined) return { key, value: own };
    if (suffix === undefined) return undefined;
    return (port === undefined ? undefined : byPort.get(port)?.get(suffix)) ?? general.get(suffix);
  };

  // With an unresolved port, SERVICE_<port>_NAME cannot be picked: the port error already says why.
  const namedByPort = port === undefined && [...byPort.values()].some((e) => e.has('NAME'));
  const service = decodeService(pick(LABEL.service), namedByPort ? '' : context.defaultName, errors);
  const weight = decodeInt(pick(LABEL.weight), MIN_WEIGHT, MAX_WEIGHT, LABEL_DEFAULTS.weight, errors);
  const version = decodeVersion(pick(LABEL.version), context.defaultVersion, errors);
  const tags = decodeTags(pick(LABEL.tags), errors);
  const check = decodeCheck(pick, port, errors);
  const upstreams = decodeUpstreams(pick(LABEL.upstreams), port, errors);

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    registration: { service: service!, port: port!, weight: weight!, version: version!, tags, check: check!, upstreams },
    ignored,
  };
}

/** Edit distance, for "did you mean". */
export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known key closest to `key`, if it is close enough to be a typo. */
export function suggestLabel(key: string): LabelKey | undefined {
  const lower = key.toLowerCase();
  if (ALIASES[lower] !== undefined) return ALIASES[lower];
  let best: LabelKey | undefined;
  let bestDistance = 3; // more than two edits away is a different word, not a typo
  for (const known of LABEL_KEYS) {
    const d = levenshtein(lower, known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best;
}

function unknownKey(key: string, value: string): WeftError {
  const hint = suggestLabel(key);
  const reason = hint === undefined ? `unknown label (known: ${LABEL_KEYS.join(', ')})` : `unknown label, did you mean ${hint}?`;
  return invalid('WEFT_ERR_LABEL_UNKNOWN', key, value, reason);
}

function bad(key: string, value: string, reason: string): WeftError {
  return invalid('WEFT_ERR_LABEL_INVALID', key, value, reason);
}

/** A required label that is absent: there is no value to quote. */
function missing(key: string, reason: string): WeftError {
  return new WeftError('WEFT_ERR_LABEL_INVALID', `${key}: ${reason}`, { key });
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function resolvePort(
  label: string | undefined,
  byPort: ReadonlyMap<number, ReadonlyMap<string, { key: string; value: string }>>,
  ignoredPorts: ReadonlySet<number>,
  context: DecodeContext,
  errors: WeftError[],
): number | undefined {
  if (label !== undefined) {
    const port = parsePort(label);
    if (port === undefined) errors.push(bad(LABEL.port, label, 'must be an integer 1-65535'));
    return port;
  }
  const named = [...byPort.keys()].filter((p) => !ignoredPorts.has(p));
  if (named.length === 1) {
    const port = named[0]!;
    if (port < 1 || port > 65535) {
      const key = [...byPort.get(port)!.values()][0]!.key;
      errors.push(bad(key, String(port), 'the port in the key must be 1-65535'));
      return undefined;
    }
    return port;
  }
  if (named.length > 1) {
    const ports = named.sort((a, b) => a - b).join(', ');
    errors.push(missing(LABEL.port, `required: SERVICE_<port>_* labels name several ports (${ports}) and weft registers one per container`));
    return undefined;
  }
  const exposed = (context.exposedPorts ?? []).filter((p) => !ignoredPorts.has(p));
  if (exposed.length === 1) return exposed[0];
  errors.push(missing(LABEL.port, exposed.length === 0 ? 'required' : `required: the container exposes several ports (${exposed.join(', ')})`));
  return undefined;
}

function decodeService(
  label: { key: string; value: string } | undefined,
  fallback: string | undefined,
  errors: WeftError[],
): string | undefined {
  if (label === undefined && fallback === undefined) {
    errors.push(missing(LABEL.service, 'required (or SERVICE_NAME)'));
    return undefined;
  }
  if (label === undefined && fallback === '') return undefined;
  const key = label?.key ?? LABEL.service;
  const value = label?.value ?? fallback!;
  if (!isServiceName(value)) {
    const why = label === undefined ? ' (derived from the image name; set weft.service)' : '';
    errors.push(bad(key, value, `must be a DNS label: lowercase letters, digits and '-', 1-63 characters${why}`));
    return undefined;
  }
  return value;
}

function decodeInt(
  label: { key: string; value: string } | undefined,
  min: number,
  max: number,
  fallback: number,
  errors: WeftError[],
): number | undefined {
  if (label === undefined) return fallback;
  const n = /^[0-9]{1,9}$/.test(label.value) ? Number(label.value) : Number.NaN;
  if (!(n >= min && n <= max)) {
    errors.push(bad(label.key, label.value, `must be an integer ${min}-${max}`));
    return undefined;
  }
  return n;
}

function decodeVersion(label: { key: string; value: string } | undefined, fallback: string | undefined, errors: WeftError[]): string | undefined {
  const value = label?.value ?? fallback ?? LABEL_DEFAULTS.version;
  if (!isVersion(value)) {
    errors.push(bad(label?.key ?? LABEL.version, value, "must be 1-128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"));
    return undefined;
  }
  return value;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function decodeTags(label: { key: string; value: string } | undefined, errors: WeftError[]): string[] {
  if (label === undefined) return [];
  const tags: string[] = [];
  for (const tag of splitList(label.value)) {
    if (!TAG.test(tag)) errors.push(bad(label.key, tag, 'each tag must be 1-255 characters without spaces'));
    else if (!tags.includes(tag)) tags.push(tag);
  }
  return tags;
}

function decodeDuration(
  label: { key: string; value: string } | undefined,
  fallback: number,
  min: number,
  max: number,
  errors: WeftError[],
): number | undefined {
  if (label === undefined) return fallback;
  const ms = parseDuration(label.value);
  if (ms === undefined) {
    errors.push(bad(label.key, label.value, 'must be a duration like 500ms, 10s or 1m'));
    return undefined;
  }
  if (ms < min || ms > max || !Number.isInteger(ms)) {
    errors.push(bad(label.key, label.value, `must be a whole number of milliseconds from ${formatDuration(min)} to ${formatDuration(max)}`));
    return undefined;
  }
  return ms;
}

type Pick = (key: LabelKey, suffix?: string) => { key: string; value: string } | undefined;

function decodeCheck(pick: Pick, port: number | undefined, errors: WeftError[]): CheckSpec | undefined {
  const before = errors.length;
  const check: Partial<CheckSpec> = {};

  const http = pick(LABEL.check.http);
  const https = http === undefined ? pick(LABEL.check.http, 'CHECK_HTTPS') : undefined;
  const httpLabel = http ?? https;
  if (httpLabel !== undefined) {
    const v = httpLabel.value;
    if (v.startsWith('/') && /^\/\S*$/.test(v)) check.http = { path: v, tls: https !== undefined };
    else if (/^https?:\/\//.test(v) && URL.canParse(v) && !/\s/.test(v)) check.http = { url: v };
    else errors.push(bad(httpLabel.key, v, 'must be a path starting with / or an http(s):// URL'));
  }

  const tcp = pick(LABEL.check.tcp);
  if (tcp === undefined) {
    // No check label at all: probe the instance port, so a closed port never gets traffic.
    if (httpLabel === undefined && port !== undefined) check.tcp = { port };
  } else {
    const v = tcp.value.toLowerCase();
    if (v === 'true') {
      if (port !== undefined) check.tcp = { port };
    } else if (v !== 'false') {
      const hostPort = /^(.+):([0-9]+)$/.exec(tcp.value);
      const p = parsePort(hostPort?.[2] ?? tcp.value);
      if (p !== undefined && (hostPort === null || HOST.test(hostPort[1]!))) {
        check.tcp = hostPort === null ? { port: p } : { host: hostPort[1]!, port: p };
      } else {
        errors.push(bad(tcp.key, tcp.value, 'must be true, false, a port 1-65535 or host:port'));
      }
    }
  }

  const interval = decodeDuration(pick(LABEL.check.interval), LABEL_DEFAULTS.intervalMs, MIN_INTERVAL_MS, MAX_INTERVAL_MS, errors);
  const timeoutLabel = pick(LABEL.check.timeout);
  // An unset timeout follows a short interval down (interval 1s -> timeout 1s), so
  // setting only the interval never turns the default timeout into an error.
  const defaultTimeout = Math.min(LABEL_DEFAULTS.timeoutMs, interval ?? LABEL_DEFAULTS.timeoutMs);
  const timeout = decodeDuration(timeoutLabel, defaultTimeout, 1, MAX_INTERVAL_MS, errors);
  if (interval !== undefined && timeout !== undefined && timeout > interval) {
    const key = timeoutLabel?.key ?? LABEL.check.timeout;
    errors.push(bad(key, timeoutLabel?.value ?? formatDuration(timeout), `must not exceed the check interval (${formatDuration(interval)})`));
  }
  const failures = decodeInt(pick(LABEL.check.failures), 1, 100, LABEL_DEFAULTS.failures, errors);
  const successes = decodeInt(pick(LABEL.check.successes), 1, 100, LABEL_DEFAULTS.successes, errors);

  if (errors.length > before) return undefined;
  return { ...check, intervalMs: interval!, timeoutMs: timeout!, failures: failures!, successes: successes! };
}

function decodeUpstreams(label: { key: string; value: string } | undefined, port: number | undefined, errors: WeftError[]): Upstream[] {
  if (label === undefined) return [];
  const out: Upstream[] = [];
  for (const entry of splitList(label.value)) {
    const m = /^([^:]*)(?::(.*))?$/.exec(entry)!;
    const service = m[1]!.trim();
    const portText = m[2]?.trim();
    if (!isServiceName(service)) {
      errors.push(bad(label.key, entry, 'each entry must be service or service:localPort, with service a DNS label'));
      continue;
    }
    const localPort = portText === undefined ? undefined : parsePort(portText);
    if (portText !== undefined && localPort === undefined) {
      errors.push(bad(label.key, entry, 'the local port must be an integer 1-65535'));
      continue;
    }
    if (out.some((u) => u.service === service)) {
      errors.push(bad(label.key, entry, `lists ${service} twice`));
      continue;
    }
    if (localPort !== undefined && (localPort === port || out.some((u) => u.localPort === localPort))) {
      errors.push(bad(label.key, entry, `local port ${localPort} is already used by ${localPort === port ? LABEL.port : 'another upstream'}`));
      continue;
    }
    out.push(localPort === undefined ? { service } : { service, localPort });
  }
  return out;
}
