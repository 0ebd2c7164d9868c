/**
 * `weft ca init|rotate|publish` and `weft cert issue|inspect`: the operator's
 * view of certs/. The CA's keys stay in <dataDir>/ca/ (0600); Consul only ever
 * receives the public trust bundle. When Consul cannot be reached, init and
 * rotate still succeed locally and say plainly that the bundle was not
 * published (`weft ca publish` retries).
 *
 * This file only declares the commands; their bodies (ca-actions.ts) load
 * when one runs, so no other command pays for node-forge and the CA.
 */
import type { Command } from 'commander';
import { configFrom } from './flags.js';
import type { CaCliIo } from './ca-actions.js';


const processIo: CaCliIo = {
  out: (line) => process.stdout.write(line + '\n'),
  warn: (line) => process.stderr.write(line + '\n'),
};

const actions = (): Promise<typeof import('./ca-actions.js')> => import('./ca-actions.js');

/** Adds `ca` and `cert` subcommands to the program. */
export function registerCaCommands(program: Command, io: CaCliIo = processIo): void {
  const ca = program.command('ca').description("weft's certificate authority: SPIFFE identities for mTLS between proxies");
  ca.command('init')
    .description('create the CA (root key in <data-dir>/ca, mode 0600) and publish the trust bundle to Consul KV weft/ca/roots')
    .option('--trust-domain <domain>', 'SPIFFE trust domain (default weft.local)')
    .option('--intermediate', 'sign leaves with an intermediate instead of the root')
    .option('--no-publish', 'do not publish the trust bundle to Consul')
    .action(async (opts: { trustDomain?: string; intermediate?: boolean; publish: boolean }, cmd: Command) => {
      const config = configFrom(cmd, { 'ca.trustDomain': [opts.trustDomain, '--trust-domain'], 'ca.intermediate': [opts.intermediate, '--intermediate'] });
      await (await actions()).caInit(config, opts, io);
    });

  ca.command('rotate')
    .description('replace the root with a new one cross-signed by the old; the old root leaves the bundle after 2 x leaf TTL')
    .option('--no-publish', 'do not publish the trust bundle to Consul')
    .action(async (opts: { publish: boolean }, cmd: Command) => {
      await (await actions()).caRotate(configFrom(cmd), opts, io);
    });

  ca.command('publish')
    .description('drop retired roots and publish the trust bundle to Consul KV weft/ca/roots')
    .action(async (_opts: unknown, cmd: Command) => {
      await (await actions()).caPublish(configFrom(cmd), io);
    });

  const cert = program.command('cert').description('workload certificates (SPIFFE X.509-SVIDs)');
  cert
    .command('issue')
    .description('issue a leaf for a service: writes key.pem (0600), cert.pem (leaf + chain) and bundle.pem to --out')
    .requiredOption('--service <name>', 'service name')
    .requiredOption('--out <dir>', 'directory to write key.pem, cert.pem, bundle.pem')
    .option('--namespace <ns>', 'namespace', 'default')
    .option('--ttl-hours <hours>', 'lifetime in hours (at most ca.leafTtlHours)')
    .action(async (opts: { service: string; out: string; namespace: string; ttlHours?: string }, cmd: Command) => {
      await (await actions()).certIssue(configFrom(cmd), opts, io);
    });

  cert
    .command('inspect')
    .description('show SPIFFE ID, SANs, validity, issuer and fingerprint of a PEM certificate (first of the file; chain listed after)')
    .argument('<file>', 'PEM file')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      (await actions()).certInspect(file, opts, io);
    });
}
