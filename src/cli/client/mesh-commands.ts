/**
 * `weft split`, `weft allow|deny`, `weft secret set|list|rm`, `weft node ls|drain|token`:
 * the mesh's traffic rules, secrets and hosts through the scheduler API.
 * Arguments are checked before anything is sent (args.ts); secret values come
 * from stdin or a file only (secret-input.ts) and are never printed.
 */
import type { Command } from 'commander';
import { parseSplitArgs } from './args.js';
import { type ConnectionFlags, clientFor, withConnectionFlags } from './connection.js';
import { type Output, processOutput } from './output.js';
import { readSecretValue } from './secret-input.js';
import { renderNodes, renderSecrets, renderSplit } from './views.js';

/** Adds split, allow, deny, secret and node. */
export function registerMeshCommands(program: Command, io: Output = processOutput): void {
  withConnectionFlags(
    program
      .command('split <service> [weights...]')
      .description("split a service's traffic between versions by weight (`weft split web v1=90 v2=10`); without weights, show the split")
      .option('--clear', 'remove the split: every version serves'),
  ).action(async (service: string, weights: string[], opts: ConnectionFlags & { clear?: boolean }, cmd: Command) => {
    // Parse first: a typo fails before any request (and before a token is even looked up).
    const doc = opts.clear || weights.length === 0 ? undefined : parseSplitArgs(weights);
    const { client } = clientFor(cmd, opts);
    if (opts.clear) {
      const r = await client.call('deleteSplit', { params: { service } });
      if (opts.json) io.json(r);
      else io.out(r.deleted ? `${service}: split removed, every version serves` : `${service}: had no split`);
      return;
    }
    const r = doc === undefined ? await client.call('getSplit', { params: { service } }) : await client.call('putSplit', { params: { service }, body: { weights: doc } });
    if (opts.json) io.json(r);
    else io.out(renderSplit(r, { color: io.color }));
  });

  for (const action of ['allow', 'deny'] as const) {
    withConnectionFlags(
      program
        .command(`${action} <source> <destination>`)
        .description(`${action} calls from service <source> to service <destination> (an intention; * matches any service)`)
        .option('--description <text>', 'why, shown in listings'),
    ).action(async (source: string, destination: string, opts: ConnectionFlags & { description?: string }, cmd: Command) => {
      const { client } = clientFor(cmd, opts);
      const body = opts.description === undefined ? { action } : { action, description: opts.description };
      const r = await client.call('putIntention', { params: { source, destination }, body });
      if (opts.json) io.json(r);
      else io.out(`${r.action} ${r.source} -> ${r.destination}`);
    });
  }

  const secret = program.command('secret').description('secrets for jobs (encrypted by the scheduler; values are never shown)');
  withConnectionFlags(
    secret
      .command('set <name>')
      .description('store a secret; the value is read from stdin (typed without echo at a terminal) or --from-file, never from an argument')
      .option('--from-file <file>', 'read the value from this file, byte for byte'),
  ).action(async (name: string, opts: ConnectionFlags & { fromFile?: string }, cmd: Command) => {
    const { client } = clientFor(cmd, opts);
    const value = await readSecretValue(name, { fromFile: opts.fromFile });
    const r = await client.call('putSecret', { params: { name }, body: { value } });
    if (opts.json) io.json(r);
    else io.out(`secret ${r.name} stored`);
  });
  withConnectionFlags(secret.command('list').alias('ls').description('list secret names (never values)')).action(
    async (opts: ConnectionFlags, cmd: Command) => {
      const { client } = clientFor(cmd, opts);
      const r = await client.call('listSecrets');
      if (opts.json) io.json(r);
      else io.out(renderSecrets(r, { color: io.color }));
    },
  );
  withConnectionFlags(secret.command('rm <name>').description('delete a secret')).action(async (name: string, opts: ConnectionFlags, cmd: Command) => {
    const { client } = clientFor(cmd, opts);
    const r = await client.call('deleteSecret', { params: { name } });
    if (opts.json) io.json(r);
    else io.out(r.deleted ? `secret ${name} deleted` : `secret ${name} did not exist`);
  });

  const node = program.command('node').description('the hosts running weft agent');
  withConnectionFlags(node.command('ls').alias('list').description('list nodes with status, capacity and allocations')).action(
    async (opts: ConnectionFlags, cmd: Command) => {
      const { client } = clientFor(cmd, opts);
      const r = await client.call('listNodes');
      if (opts.json) io.json(r);
      else io.out(renderNodes(r, { color: io.color }));
    },
  );
  withConnectionFlags(
    node
      .command('drain <node>')
      .description('drain a node: nothing new lands there and its allocations migrate away')
      .option('--disable', 'end the drain: the node takes allocations again'),
  ).action(async (name: string, opts: ConnectionFlags & { disable?: boolean }, cmd: Command) => {
    const { client } = clientFor(cmd, opts);
    const r = await client.call('drainNode', { params: { node: name }, body: { enable: opts.disable !== true } });
    if (opts.json) io.json(r);
    else io.out(r.drain ? `${r.node}: draining (\`weft node ls\` shows its allocations leave)` : `${r.node}: drain ended`);
  });
  // The operator hands this to the host's agent (WEFT_TOKEN), as with Nomad's and Consul's agent tokens.
  withConnectionFlags(node.command('token <node>').description("print the agent token of a host (its weft agent's WEFT_TOKEN: CSRs and secrets for that host only)")).action(
    async (name: string, opts: ConnectionFlags, cmd: Command) => {
      const { client } = clientFor(cmd, opts);
      const r = await client.call('nodeToken', { params: { node: name } });
      if (opts.json) io.json(r);
      else io.out(r.token);
    },
  );
}
