/**
 * `consul agent` flags on `weft dev-consul`, so a script written for
 * `consul agent -dev -node x -client 0.0.0.0` runs unchanged. Consul's flags
 * follow Go's flag package: one dash or two, `-name=value` or `-name value`,
 * booleans as `-name` or `-name=false`. commander (weft's parser) takes weft's
 * own double-dash options first (`--port`, `--bind`, `--data-dir`, ...); what
 * it leaves is read here. Flags a single node honours become a config
 * fragment applied after the config files, as in Consul; flags it cannot
 * honour (`-retry-join`, `-ui`, ...) are collected for a warning, with their
 * values consumed so nothing is mistaken for a stray argument.
 */
import { WeftError } from '../../../base/errors.js';
import type { ConfigFormat, ConfigSource } from './read.js';
import type { ConsulConfigFile } from './schema.js';

/** What the Consul-style flags asked for. */
export interface ConsulFlags {
  /** Values set by flags, in config-file spelling (they win over files). */
  readonly values: Omit<ConsulConfigFile, 'service' | 'services' | 'check' | 'checks'>;
  /** -config-file, -config-dir and -hcl, in the order given. */
  readonly sources: readonly ConfigSource[];
  readonly format?: ConfigFormat;
  /** -dev: keep state in memory (a temporary directory removed at exit), as `consul agent -dev` does. */
  readonly dev: boolean;
  /** The flags that were read but cannot be honoured, as written (`-retry-join`). */
  readonly ignored: readonly string[];
  /** Every Consul-style flag that was given, for logs. */
  readonly given: readonly string[];
}

type Kind = 'string' | 'bool' | 'int' | 'list';

/** The flags honoured, with what they set. */
const HONOURED: Readonly<Record<string, { kind: Kind; key?: string }>> = {
  node: { kind: 'string', key: 'node_name' },
  datacenter: { kind: 'string', key: 'datacenter' },
  'data-dir': { kind: 'string', key: 'data_dir' },
  client: { kind: 'string', key: 'client_addr' },
  bind: { kind: 'string', key: 'bind_addr' },
  advertise: { kind: 'string', key: 'advertise_addr' },
  'http-port': { kind: 'int', key: 'ports.http' },
  'enable-script-checks': { kind: 'bool', key: 'enable_script_checks' },
  'enable-local-script-checks': { kind: 'bool', key: 'enable_local_script_checks' },
  'pid-file': { kind: 'string', key: 'pid_file' },
  'log-level': { kind: 'string', key: 'log_level' },
  'log-json': { kind: 'bool', key: 'log_json' },
  server: { kind: 'bool', key: 'server' },
  bootstrap: { kind: 'bool', key: 'bootstrap' },
  'bootstrap-expect': { kind: 'int', key: 'bootstrap_expect' },
  'node-meta': { kind: 'list' },
  'config-file': { kind: 'list' },
  'config-dir': { kind: 'list' },
  'config-format': { kind: 'string' },
  hcl: { kind: 'list' },
  dev: { kind: 'bool' },
};

/** Consul agent flags that take no value, of those not honoured (to parse them right). */
const UNHONOURED_BOOLS = new Set([
  'ui',
  'rejoin',
  'syslog',
  'disable-host-node-id',
  'disable-keyring-file',
  'non-voting-server',
  'read-replica',
  'auto-reload-config',
  'dev-allow-anonymous',
  'raft-no-voting',
]);

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'err', 'error']);

/**
 * Reads Consul-style flags from what commander left over. Throws
 * WEFT_ERR_ARGUMENT_INVALID for a missing or malformed value, an unknown
 * double-dash option (most likely a typo of one of weft's) or a stray argument.
 */
export function parseConsulFlags(args: readonly string[]): ConsulFlags {
  const values: Record<string, unknown> = {};
  const sources: ConfigSource[] = [];
  const ignored: string[] = [];
  const given: string[] = [];
  let format: ConfigFormat | undefined;
  let dev = false;
  const nodeMeta: Record<string, string> = {};

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--?([^-=][^=]*)(?:=([\s\S]*))?$/.exec(arg);
    if (m === null) throw argError(arg, arg, arg.startsWith('-') ? 'is not a flag weft dev-consul knows' : 'unexpected argument (weft dev-consul takes flags only)');
    const name = m[1]!;
    const written = `-${name}`;
    let inline = m[2];
    const spec = HONOURED[name];
    if (spec === undefined) {
      if (arg.startsWith('--')) throw argError(arg, arg, "unknown option (weft's own options are --port, --bind, --node-meta and the global ones; Consul's take one dash)");
      // Not honoured: consume its value so it is not taken for an argument, and name it in the warning.
      if (inline === undefined && !UNHONOURED_BOOLS.has(name) && i + 1 < args.length && !args[i + 1]!.startsWith('-')) i++;
      if (!ignored.includes(written)) ignored.push(written);
      given.push(written);
      continue;
    }
    given.push(written);
    if (spec.kind === 'bool') {
      const on = inline === undefined ? true : parseBool(inline);
      if (on === undefined) throw argError(written, inline, 'must be true or false');
      if (name === 'dev') dev = on;
      else set(values, spec.key!, on);
      continue;
    }
    if (inline === undefined) {
      if (i + 1 >= args.length) throw argError(written, undefined, `flag needs an argument: ${written}`);
      inline = args[++i]!;
    }
    switch (name) {
      case 'config-file':
        sources.push({ kind: 'file', path: inline });
        break;
      case 'config-dir':
        sources.push({ kind: 'dir', path: inline });
        break;
      case 'hcl':
        sources.push({ kind: 'hcl', text: inline });
        break;
      case 'config-format':
        if (inline !== 'json' && inline !== 'hcl') throw argError(written, inline, 'must be json or hcl');
        format = inline;
        break;
      case 'node-meta': {
        const colon = inline.indexOf(':');
        const key = colon === -1 ? inline : inline.slice(0, colon);
        if (key === '') throw argError(written, inline, 'must be key:value');
        nodeMeta[key] = colon === -1 ? '' : inline.slice(colon + 1);
        break;
      }
      default:
        if (spec.kind === 'int') {
          if (!/^\d+$/.test(inline) || Number(inline) > 65535) throw argError(written, inline, 'must be a whole number 0-65535');
          set(values, spec.key!, Number(inline));
        } else {
          if (inline === '') throw argError(written, inline, 'must not be empty');
          if (name === 'log-level' && !LOG_LEVELS.has(inline.toLowerCase())) throw argError(written, inline, 'must be one of trace, debug, info, warn, err');
          set(values, spec.key!, inline);
        }
    }
  }
  if (Object.keys(nodeMeta).length > 0) values['node_meta'] = nodeMeta;
  return { values, sources, ...(format === undefined ? {} : { format }), dev, ignored, given };
}

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  return undefined;
}

function set(values: Record<string, unknown>, path: string, value: unknown): void {
  const [head, tail] = path.split('.') as [string, string | undefined];
  if (tail === undefined) values[head] = value;
  else values[head] = { ...(values[head] as Record<string, unknown> | undefined), [tail]: value };
}

function argError(flag: string, value: unknown, reason: string): WeftError {
  return new WeftError('WEFT_ERR_ARGUMENT_INVALID', `${flag}: ${reason}${value === undefined ? '' : ` (got ${JSON.stringify(value)})`}`, {
    key: flag,
    value,
  });
}
