/** Flags every subcommand shares, and how they become configuration. */
import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/load.js';

/** Options shared by every subcommand, mapped to config paths. */
export const GLOBAL_FLAGS: ReadonlyArray<readonly [flag: string, path: string, description: string]> = [
  ['--config <file>', '', 'config file (YAML or JSON); also $WEFT_CONFIG'],
  ['--consul <addr>', 'consul.address', 'Consul HTTP address, host:port or URL; also $CONSUL_HTTP_ADDR'],
  ['--data-dir <dir>', 'dataDir', 'state directory; also $WEFT_DATA_DIR'],
  ['--node <name>', 'nodeName', "this host's node name; also $WEFT_NODE_NAME"],
  ['--datacenter <dc>', 'datacenter', 'Consul datacenter; also $WEFT_DATACENTER'],
  ['--log-level <level>', 'log.level', 'trace|debug|info|warn|error|fatal|silent; also $WEFT_LOG_LEVEL'],
  ['--log-format <format>', 'log.format', 'auto|json|pretty; also $WEFT_LOG_FORMAT'],
];

/** Reads the merged configuration for a command from its (and its parents') options. */
export function configFrom(cmd: Command, extra: Record<string, [value: unknown, flag: string]> = {}): Readonly<Config> {
  const opts = cmd.optsWithGlobals() as Record<string, unknown>;
  const flags: Record<string, unknown> = {};
  const flagNames: Record<string, string> = {};
  for (const [flag, path] of GLOBAL_FLAGS) {
    if (path === '') continue;
    const name = flag.split(' ')[0]!;
    const key = camel(name.replace(/^--/, ''));
    if (opts[key] !== undefined) {
      flags[path] = opts[key];
      flagNames[path] = name;
    }
  }
  for (const [path, [value, name]] of Object.entries(extra)) {
    if (value === undefined) continue;
    flags[path] = value;
    flagNames[path] = name;
  }
  const file = opts['config'] as string | undefined;
  return loadConfig(file === undefined ? { flags, flagNames } : { flags, flagNames, file });
}

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
