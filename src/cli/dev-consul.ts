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
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
PUT /v1/agent/reload re-reads the config files (services, checks, node_meta, log_level).

ACLs (Consul's acl { enabled, default_policy, tokens { initial_management, default } } in a config file, or):
  --acl --acl-default-policy deny --acl-bootstrap-token-file F
Without a management token, PUT /v1/acl/bootstrap once hands one out. Policies for weft's
components: docs/acl/ (docs/acl/README.md says how to load them).`;

/** Adds the dev-consul subcommand to the program. */
export function registerDevConsulCommand(program: Command): void {
  program
    .command('dev-consul')
    .description('run the embedded single-node Consul-compatible dev agent (like `consul agent -dev`)')
    .option('--bind <addr>', 'address to listen on; also $WEFT_DEV_CONSUL_BIND (default 127.0.0.1)')
    .option('--port <port>', 'HTTP port; also $WEFT_DEV_CONSUL_PORT (default 8500)')
    .option('--node-meta <key:value>', "this node's Meta, like Consul's -node-meta; repeatable", (v: string, all: string[] = []) => [...all, v])
    .option('--acl', "enforce Consul's ACLs (acl.enabled = true)")
    .option('--acl-default-policy <policy>', 'allow or deny: what applies where no ACL rule matches (acl.default_policy; default allow)')
    // A file, not the secret itself: an argument is visible to every user in `ps` and lands in shell history.
    .option('--acl-bootstrap-token-file <path>', 'a file holding a management token (acl.tokens.initial_management); the agent creates that token at start if it has none with it')
    // Consul's single-dash flags reach the action in cmd.args (commander would read -node as -n -o -d -e).
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', CONSUL_FLAGS_HELP)
    .action(async (opts: { bind?: string; port?: string; nodeMeta?: string[]; acl?: boolean; aclDefaultPolicy?: string; aclBootstrapTokenFile?: string }, cmd: Command) => {
      const config = configFrom(cmd, { 'devConsul.bind': [opts.bind, '--bind'], 'devConsul.port': [opts.port, '--port'] });
      const { resolveDevConsulConfig, startDevConsul } = await import('../../discovery/dev-agent/index.js');
      const globals = cmd.optsWithGlobals() as Record<string, unknown>;
      const nodeMeta = parseNodeMeta(opts.nodeMeta ?? []);
      const aclWarnings: string[] = [];
      const acl = aclFlags(opts, aclWarnings);
      const plan = await resolveDevConsulConfig(cmd.args, {
        nodeName: config.nodeName,
        datacenter: config.datacenter,
        dataDir: `${config.dataDir}/dev-consul`,
        bind: config.devConsul.bind,
        port: config.devConsul.port,
        ...(nodeMeta === undefined ? {} : { nodeMeta }),
        ...(acl === undefined ? {} : { acl }),
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
      for (const w of [...plan.warnings, ...aclWarnings]) logger.warn(w);
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
          ...(s.acl === undefined ? {} : { acl: s.acl }),
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
        {
          address: agent.address,
          dataDir: s.dataDir ?? `${dataDir} (-dev: removed at exit)`,
          configFiles: plan.origins,
          nodeName: s.nodeName,
          acl: s.acl === undefined ? 'off' : `on, default policy ${s.acl.defaultPolicy ?? 'allow'}`,
        },
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

/** The ACL flags; the bootstrap token is read from its file (first line), which should be readable by its owner only. */
function aclFlags(
  opts: { acl?: boolean; aclDefaultPolicy?: string; aclBootstrapTokenFile?: string },
  warnings: string[],
): { enabled?: boolean; defaultPolicy?: 'allow' | 'deny'; initialManagementToken?: string } | undefined {
  const out: { enabled?: boolean; defaultPolicy?: 'allow' | 'deny'; initialManagementToken?: string } = {};
  if (opts.acl === true) out.enabled = true;
  if (opts.aclDefaultPolicy !== undefined) {
    if (opts.aclDefaultPolicy !== 'allow' && opts.aclDefaultPolicy !== 'deny') {
      throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--acl-default-policy', opts.aclDefaultPolicy, 'must be allow or deny');
    }
    out.defaultPolicy = opts.aclDefaultPolicy;
  }
  if (opts.aclBootstrapTokenFile !== undefined) {
    const file = opts.aclBootstrapTokenFile;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--acl-bootstrap-token-file', file, `cannot be read: ${(err as Error).message}`);
    }
    const token = text.split('\n')[0]!.trim();
    if (token === '') throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--acl-bootstrap-token-file', file, 'is empty');
    if ((statSync(file).mode & 0o077) !== 0) warnings.push(`${file} holds the ACL management token and is readable by others; chmod 600 it`);
    out.initialManagementToken = token;
  }
  return Object.keys(out).length === 0 ? undefined : out;
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
