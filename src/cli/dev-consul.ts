/**
 * `weft dev-consul`: the embedded Consul-HTTP-API-compatible agent. Its
 * modules (fastify, the state store) load only when the command runs.
 *
 * It also takes `consul agent`'s flags (one dash: `-dev -node x -client
 * 0.0.0.0 -config-dir /etc/consul.d`), so scripts written for Consul run
 * unchanged: commander parses weft's own double-dash options and leaves the
 * rest in `cmd.args`, which the dev agent's config reader takes from there
 * (discovery/dev-agent/config/: flags, Consul config files, precedence).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { invalid } from '../../base/errors.js';
import { createLogger } from '../../base/log.js';
import { configFrom } from './flags.js';

const CONSUL_FLAGS_HELP = `
Consul agent flags (one dash, as \`consul agent\` takes them; flags win over config files):
  -config-file F, -config-dir D   Consul config files, JSON or HCL (a directory's *.json and *.hcl in lexical order)
  -config-format json|hcl          read every config file in this format
  -hcl 'key = value'               an HCL fragment, applied after the files
  -node N, -datacenter DC          node name, datacenter
  -client A                        HTTP listen address (weft's --bind)
  -http-port P                     HTTP port (weft's --port)
  -bind A, -advertise A            the node's address in the catalog
  -data-dir D                      state directory, used as is (weft's --data-dir D means D/dev-consul)
  -dev                             keep state in memory (a temporary directory, removed at exit)
  -enable-script-checks            run script checks from config files and the HTTP API
  -enable-local-script-checks      run script checks from config files only
  -node-meta k:v, -log-level L, -log-json, -pid-file F
  -server, -bootstrap, -bootstrap-expect=1   accepted: the dev agent is always a bootstrapped server
Other Consul flags (-retry-join, -ui, -encrypt, ...) are named in a warning and ignored.
PUT /v1/agent/reload re-reads the config files (services, checks, node_meta, log_level).`;

/** Adds the dev-consul subcommand to the program. */
export function registerDevConsulCommand(program: Command): void {
  program
    .command('dev-consul')
    .description('run the embedded single-node Consul-compatible dev agent (like `consul agent -dev`)')
    .option('--bind <addr>', 'address to listen on; also $WEFT_DEV_CONSUL_BIND (default 127.0.0.1)')
    .option('--port <port>', 'HTTP port; also $WEFT_DEV_CONSUL_PORT (default 8500)')
    .option('--node-meta <key:value>', "this node's Meta, like Consul's -node-meta; repeatable", (v: string, all: string[] = []) => [...all, v])
    // Consul's single-dash flags reach the action in cmd.args (commander would read -node as -n -o -d -e).
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', CONSUL_FLAGS_HELP)
    .action(async (opts: { bind?: string; port?: string; nodeMeta?: string[] }, cmd: Command) => {
      const config = configFrom(cmd, { 'devConsul.bind': [opts.bind, '--bind'], 'devConsul.port': [opts.port, '--port'] });
      const { resolveDevConsulConfig, startDevConsul } = await import('../../discovery/dev-agent/index.js');
      const globals = cmd.optsWithGlobals() as Record<string, unknown>;
      const nodeMeta = parseNodeMeta(opts.nodeMeta ?? []);
      const plan = await resolveDevConsulConfig(cmd.args, {
        nodeName: config.nodeName,
        datacenter: config.datacenter,
        dataDir: `${config.dataDir}/dev-consul`,
        bind: config.devConsul.bind,
        port: config.devConsul.port,
        ...(nodeMeta === undefined ? {} : { nodeMeta }),
        fromFlags: {
          nodeName: globals['node'] !== undefined,
          datacenter: globals['datacenter'] !== undefined,
          dataDir: globals['dataDir'] !== undefined,
          bind: opts.bind !== undefined,
          port: opts.port !== undefined,
        },
      });
      const weftLevel = globals['logLevel'] !== undefined; // weft's --log-level wins over Consul's
      const logger = createLogger({
        level: weftLevel ? config.log.level : (plan.logLevel ?? config.log.level),
        format: plan.logJson && globals['logFormat'] === undefined ? 'json' : config.log.format,
        name: 'dev-consul',
      });
      for (const w of plan.warnings) logger.warn(w);
      const s = plan.settings;
      // -dev: state in a temporary directory that goes at exit, as `consul agent -dev` keeps it in memory.
      const dataDir = s.dataDir ?? mkdtempSync(join(tmpdir(), 'weft-dev-consul-'));
      const dropTemp = (): void => {
        if (s.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
      };
      let agent: Awaited<ReturnType<typeof startDevConsul>>;
      try {
        agent = await startDevConsul({
          bind: s.bind,
          port: s.port,
          dataDir,
          nodeName: s.nodeName,
          datacenter: s.datacenter,
          ...(s.nodeMeta === undefined ? {} : { nodeMeta: s.nodeMeta }),
          ...(s.advertise === undefined ? {} : { advertise: s.advertise }),
          ...(s.enableScriptChecks === undefined ? {} : { enableScriptChecks: s.enableScriptChecks }),
          ...(s.enableLocalScriptChecks === undefined ? {} : { enableLocalScriptChecks: s.enableLocalScriptChecks }),
          definitions: s.definitions,
          logger,
          // PUT /v1/agent/reload: the config files again (services, checks, node Meta, log level).
          reload: async () => {
            const next = await plan.reload();
            for (const w of next.warnings) logger.warn(w);
            if (next.logLevel !== undefined && !weftLevel) logger.level = next.logLevel;
            return { nodeMeta: next.nodeMeta, definitions: next.definitions };
          },
        });
      } catch (err) {
        dropTemp();
        throw err;
      }
      if (plan.pidFile !== undefined) writeFileSync(plan.pidFile, String(process.pid));
      logger.info(
        { address: agent.address, dataDir: s.dataDir ?? `${dataDir} (-dev: removed at exit)`, configFiles: plan.origins, nodeName: s.nodeName },
        'dev Consul agent ready',
      );
      const stop = (): void => {
        logger.info('shutting down');
        void agent.close();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A signal or PUT /v1/agent/leave: either way the agent has shut down cleanly, exit 0.
      const why = await agent.stopped;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (why === 'leave') logger.info('left: dev Consul agent stopped');
      if (plan.pidFile !== undefined) rmSync(plan.pidFile, { force: true });
      dropTemp();
    });
}

/** `--node-meta key:value` pairs, split at the first colon as Consul splits -node-meta (no colon: empty value). */
function parseNodeMeta(pairs: readonly string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const meta: Record<string, string> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    const key = colon === -1 ? pair : pair.slice(0, colon);
    if (key === '') throw invalid('WEFT_ERR_CONFIG_INVALID', '--node-meta', pair, 'must be key:value');
    meta[key] = colon === -1 ? '' : pair.slice(colon + 1);
  }
  return meta;
}
