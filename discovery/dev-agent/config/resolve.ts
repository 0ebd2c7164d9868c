/**
 * What `weft dev-consul` runs with, from three places:
 *
 *   flags (weft's `--port --bind --data-dir --node --datacenter --node-meta`
 *          and Consul's `-node -client -http-port ...`)
 *   > Consul config files (`-config-file`, `-config-dir`, `-hcl`; merged in
 *          order: later values win, maps merge, services and checks add up)
 *   > weft's own configuration (environment, weft config file, defaults)
 *
 * A weft flag and a Consul flag for the same setting that disagree are an
 * error rather than a silent pick. The mapping to Consul's names: `--bind`
 * and `-client`/`client_addr`/`addresses.http` are the HTTP listen address;
 * `--port` and `-http-port`/`ports.http` its port; Consul's `-bind`/
 * `bind_addr` (and `-advertise`) is the node's address in the catalog;
 * Consul's `-data-dir`/`data_dir` is the state directory itself, weft's
 * `--data-dir D` means `D/dev-consul`.
 *
 * ACLs: `acl.enabled`, `acl.default_policy`, `acl.tokens.initial_management`
 * and `acl.tokens.default` from the files; weft's `--acl`,
 * `--acl-default-policy` and `--acl-bootstrap-token-file` win over them.
 *
 * The result's `reload()` reads the same files again for PUT
 * /v1/agent/reload: services, checks, node Meta and the log level change;
 * other keys need a restart, and a reload that changes one says so.
 */
import { WeftError } from '../../../base/errors.js';
import type { AclOptions } from '../acl/system.js';
import type { ScriptCheckPolicy } from '../checks/definition.js';
import type { ConfigDefinitions } from './definitions.js';
import { type ConsulFlags, parseConsulFlags } from './flags.js';
import type { ConfigFragment } from './read.js';

/** weft's own view of the settings, and which of them came from weft's flags. */
export interface WeftDevConsulSettings {
  readonly nodeName: string;
  readonly datacenter: string;
  /** The state directory (`<weft dataDir>/dev-consul`). */
  readonly dataDir: string;
  readonly bind: string;
  readonly port: number;
  /** `--node-meta` pairs. */
  readonly nodeMeta?: Readonly<Record<string, string>>;
  /** Which settings were given as weft flags (they win over Consul config files). */
  readonly fromFlags: Readonly<Partial<Record<'nodeName' | 'datacenter' | 'dataDir' | 'bind' | 'port', boolean>>>;
  /** ACL settings given as weft flags (--acl, --acl-default-policy, --acl-bootstrap-token-file); they win over files. */
  readonly acl?: Readonly<Partial<Pick<AclOptions, 'enabled' | 'defaultPolicy' | 'initialManagementToken'>>>;
}

/** The agent's settings once every source is merged. */
export interface DevConsulSettings extends ScriptCheckPolicy {
  readonly nodeName: string;
  readonly datacenter: string;
  /** Undefined with -dev and no directory given: state is kept in a temporary directory. */
  readonly dataDir: string | undefined;
  /** HTTP listen address. */
  readonly bind: string;
  readonly port: number;
  /** The node's address in the catalog, when set apart from the listen address. */
  readonly advertise?: string;
  readonly nodeMeta?: Readonly<Record<string, string>>;
  readonly definitions: ConfigDefinitions;
  /** Consul's ACL system; absent when no source turned it on. */
  readonly acl?: AclOptions;
}

/** What the CLI does with the merged configuration. */
export interface DevConsulPlan {
  readonly settings: DevConsulSettings;
  /** -dev was given. */
  readonly dev: boolean;
  readonly pidFile?: string;
  /** A pino level from -log-level / log_level. */
  readonly logLevel?: string;
  readonly logJson: boolean;
  /** Things ignored or overridden, one sentence each, for the log. */
  readonly warnings: readonly string[];
  /** Every config file (and -hcl fragment) read, in order. */
  readonly origins: readonly string[];
  /** Re-reads the config files (the flags stay as they were); throws on a bad file and changes nothing. */
  reload(): Promise<DevConsulReloaded>;
}

/** What a reload found. */
export interface DevConsulReloaded {
  readonly definitions: ConfigDefinitions;
  readonly nodeMeta: Readonly<Record<string, string>>;
  readonly logLevel?: string;
  readonly warnings: readonly string[];
}

type Values = ConfigFragment['values'];

const FLAGS_WARNING = 'ignored Consul flags the dev agent cannot honour (one node, no gossip, no UI)';

/** Reads the Consul-style flags in `args` (what commander left) and the config files they name. */
export async function resolveDevConsulConfig(args: readonly string[], weft: WeftDevConsulSettings): Promise<DevConsulPlan> {
  const flags = parseConsulFlags(args);
  const first = await readAll(flags, weft);
  const plan: DevConsulPlan = {
    settings: first.settings,
    dev: flags.dev,
    ...(first.merged.values.pid_file === undefined ? {} : { pidFile: first.merged.values.pid_file }),
    ...(first.logLevel === undefined ? {} : { logLevel: first.logLevel }),
    logJson: first.merged.values.log_json === true,
    warnings: first.warnings,
    origins: first.merged.origins,
    async reload() {
      const next = await readAll(flags, weft);
      // The flags did not change: their warning was given at start.
      const warnings = next.warnings.filter((w) => !w.startsWith(FLAGS_WARNING));
      const changed = restartOnly(first.settings, next.settings);
      if (changed.length > 0) warnings.push(`reload: ${changed.join(', ')} changed in the config; that takes a restart (kept as it was)`);
      return { definitions: next.settings.definitions, nodeMeta: next.settings.nodeMeta ?? {}, ...(next.logLevel === undefined ? {} : { logLevel: next.logLevel }), warnings };
    },
  };
  return plan;
}

interface Merged {
  values: Values;
  /** Which source set each top-level (and ports./addresses./acl.) key last. */
  origin: Map<string, string>;
  services: ReadonlyArray<{ s: ConfigFragment['services'][number]; origin: string }>;
  checks: ReadonlyArray<{ c: ConfigFragment['checks'][number]; origin: string }>;
  origins: string[];
}

async function readAll(
  flags: ConsulFlags,
  weft: WeftDevConsulSettings,
): Promise<{ settings: DevConsulSettings; merged: Merged; warnings: string[]; logLevel?: string }> {
  let fragments: ConfigFragment[] = [];
  if (flags.sources.length > 0) {
    const { readConfigSources } = await import('./read.js');
    fragments = await readConfigSources(flags.sources, flags.format);
  }
  const warnings: string[] = [];
  for (const f of fragments) {
    if (f.ignored.length > 0) warnings.push(`${f.origin}: ignored keys the dev agent does not honour: ${f.ignored.join(', ')}`);
    warnings.push(...(f.notes ?? []));
  }
  if (flags.ignored.length > 0) {
    warnings.push(`${FLAGS_WARNING}: ${flags.ignored.join(', ')}`);
  }
  const fromFiles = merge(fragments);
  const merged = merge([...fragments, { origin: 'flags', values: flags.values, services: [], checks: [], ignored: [] }]);
  const v = merged.values;
  const originOf = (key: string): string => merged.origin.get(key) ?? 'flags';

  const acl = aclSettings(v.acl, weft.acl);
  if (acl === undefined && (v.acl?.default_policy !== undefined || v.acl?.tokens !== undefined || weft.acl?.defaultPolicy !== undefined || weft.acl?.initialManagementToken !== undefined)) {
    warnings.push(`${originOf('acl')}: ACL settings given but acl.enabled is not true (--acl): ACLs stay off`);
  }
  if (v.server === false) warnings.push(`${originOf('server')}: server = false ignored: the dev agent is always a server`);
  if (v.bootstrap_expect !== undefined && v.bootstrap_expect > 1) {
    warnings.push(`${originOf('bootstrap_expect')}: bootstrap_expect = ${v.bootstrap_expect} ignored: the dev agent is a single, bootstrapped server`);
  }

  const fv = flags.values;
  const fileV = fromFiles.values;
  const pick = <T>(setting: string, consulFlag: T | undefined, consulName: string, weftFlag: T | undefined, weftName: string, file: T | undefined, fallback: T): T => {
    if (consulFlag !== undefined && weftFlag !== undefined && consulFlag !== weftFlag) {
      throw new WeftError('WEFT_ERR_ARGUMENT_INVALID', `${consulName} ${JSON.stringify(consulFlag)} and ${weftName} ${JSON.stringify(weftFlag)} both set the ${setting}; give one`, {
        key: consulName,
        value: consulFlag,
      });
    }
    return consulFlag ?? weftFlag ?? file ?? fallback;
  };
  const ifFlag = <K extends keyof WeftDevConsulSettings['fromFlags']>(k: K): WeftDevConsulSettings[K] | undefined => (weft.fromFlags[k] === true ? weft[k] : undefined);

  const fileOrigin = (key: string): string => `${fromFiles.origin.get(key) ?? 'config'}: ${key}`;
  for (const key of ['client_addr', 'bind_addr', 'advertise_addr'] as const) {
    checkSingleAddress(fv[key], `flag -${key === 'client_addr' ? 'client' : key === 'bind_addr' ? 'bind' : 'advertise'}`);
    checkSingleAddress(fileV[key], fileOrigin(key));
  }
  checkSingleAddress(fileV.addresses?.http, fileOrigin('addresses.http'));
  const bind = pick('listen address', fv.client_addr, '-client', ifFlag('bind'), '--bind', fileV.addresses?.http ?? fileV.client_addr, weft.bind);
  const advertise = fv.advertise_addr ?? fv.bind_addr ?? fileV.advertise_addr ?? fileV.bind_addr;
  const explicitDir = pick('data directory', fv.data_dir, '-data-dir', ifFlag('dataDir'), '--data-dir', fileV.data_dir, undefined);
  const nodeMeta = { ...v.node_meta, ...weft.nodeMeta };
  const policy: ScriptCheckPolicy = {
    ...(v.enable_script_checks === undefined ? {} : { enableScriptChecks: v.enable_script_checks }),
    ...(v.enable_local_script_checks === undefined ? {} : { enableLocalScriptChecks: v.enable_local_script_checks }),
  };
  const { checkDefinitions } = await import('./definitions.js');
  const definitions = checkDefinitions(merged.services, merged.checks, policy);

  const settings: DevConsulSettings = {
    nodeName: pick('node name', fv.node_name, '-node', ifFlag('nodeName'), '--node', fileV.node_name, weft.nodeName),
    datacenter: pick('datacenter', fv.datacenter, '-datacenter', ifFlag('datacenter'), '--datacenter', fileV.datacenter, weft.datacenter),
    // -dev keeps state in memory unless a directory was asked for explicitly.
    dataDir: explicitDir ?? (flags.dev ? undefined : weft.dataDir),
    bind,
    port: pick('HTTP port', fv.ports?.http, '-http-port', ifFlag('port'), '--port', fileV.ports?.http, weft.port),
    ...(advertise === undefined || advertise === '0.0.0.0' || advertise === '::' ? {} : { advertise }),
    ...(Object.keys(nodeMeta).length === 0 ? {} : { nodeMeta }),
    ...policy,
    definitions,
    ...(acl === undefined ? {} : { acl }),
  };
  const level = v.log_level?.toLowerCase();
  return { settings, merged, warnings, ...(level === undefined ? {} : { logLevel: level === 'err' ? 'error' : level }) };
}

/** acl.* merged from the files and weft's flags (flags win); undefined while ACLs stay off. */
function aclSettings(file: Values['acl'], flags: WeftDevConsulSettings['acl']): AclOptions | undefined {
  const enabled = flags?.enabled ?? file?.enabled ?? false;
  if (!enabled) return undefined;
  const defaultPolicy = flags?.defaultPolicy ?? file?.default_policy;
  const initial = flags?.initialManagementToken ?? file?.tokens?.initial_management;
  const defaultToken = file?.tokens?.default;
  return {
    enabled: true,
    ...(defaultPolicy === undefined ? {} : { defaultPolicy }),
    ...(initial === undefined ? {} : { initialManagementToken: initial }),
    ...(defaultToken === undefined ? {} : { defaultToken }),
  };
}

/** Maps merge key by key, one level further down too (`acl { tokens { ... } }` in two files). */
function mergeMaps(a: object | undefined, b: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(a as Record<string, unknown> | undefined) };
  for (const [k, v] of Object.entries(b)) {
    const before = out[k];
    const bothMaps = [before, v].every((x) => x !== null && typeof x === 'object' && !Array.isArray(x));
    out[k] = bothMaps ? { ...(before as object), ...(v as object) } : v;
  }
  return out;
}

/** Consul's merge: later scalars win, maps merge key by key, services and checks add up. */
function merge(fragments: readonly ConfigFragment[]): Merged {
  const values: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  const services: Array<{ s: ConfigFragment['services'][number]; origin: string }> = [];
  const checks: Array<{ c: ConfigFragment['checks'][number]; origin: string }> = [];
  for (const f of fragments) {
    for (const [key, value] of Object.entries(f.values as Record<string, unknown>)) {
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        values[key] = mergeMaps(values[key] as object | undefined, value);
        for (const k of Object.keys(value)) origin.set(`${key}.${k}`, f.origin);
      } else values[key] = value;
      origin.set(key, f.origin);
    }
    for (const s of f.services) services.push({ s, origin: f.origin });
    for (const c of f.checks) checks.push({ c, origin: f.origin });
  }
  return { values: values as Values, origin, services, checks, origins: fragments.map((f) => f.origin).filter((o) => o !== 'flags') };
}

/** client_addr may be a list or a go-sockaddr template in Consul; the dev agent listens on one address. */
function checkSingleAddress(addr: string | undefined, where: string): void {
  if (addr === undefined || !(/\s/.test(addr.trim()) || addr.includes('{{'))) return;
  const code = where.startsWith('flag ') ? 'WEFT_ERR_ARGUMENT_INVALID' : 'WEFT_ERR_DEV_CONSUL_CONFIG';
  throw new WeftError(code, `${where}: give one address; lists and go-sockaddr templates are not supported by the dev agent (got ${JSON.stringify(addr)})`, {
    key: where,
    value: addr,
  });
}

/** Settings a reload cannot change. */
function restartOnly(a: DevConsulSettings, b: DevConsulSettings): string[] {
  const out: string[] = [];
  const keys: Array<[keyof DevConsulSettings, string]> = [
    ['nodeName', 'node_name'],
    ['datacenter', 'datacenter'],
    ['dataDir', 'data_dir'],
    ['bind', 'client_addr/addresses.http'],
    ['port', 'ports.http'],
    ['advertise', 'bind_addr/advertise_addr'],
    ['enableScriptChecks', 'enable_script_checks'],
    ['enableLocalScriptChecks', 'enable_local_script_checks'],
  ];
  for (const [k, name] of keys) if (a[k] !== b[k]) out.push(name);
  if (JSON.stringify(a.acl ?? null) !== JSON.stringify(b.acl ?? null)) out.push('acl');
  return out;
}

