/**
 * The shipped Consul ACL policies (docs/acl/*.hcl) loaded into a running
 * agent the way an operator would, over Consul's ACL HTTP API with a
 * management token: one policy per component (one per host for the agent,
 * `<host>` replaced), one token per policy. Used by the dev agent's ACL tests
 * and the integration test of a scheduler and an agent under default deny.
 * (Not a *.test.ts file: tap does not run it.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ACL_DIR = join(import.meta.dirname, '../../docs/acl');

/** The rules of a shipped policy; `host` fills the agent policy's `<host>`. */
export function shippedRules(name: 'agent' | 'proxy' | 'scheduler' | 'prometheus', host?: string): string {
  const text = readFileSync(join(ACL_DIR, `${name}.hcl`), 'utf8');
  return host === undefined ? text : text.replaceAll('<host>', host);
}

/** One HTTP call to the agent at `address` (host:port); the body is JSON unless it is a string. */
export async function aclCall(
  address: string,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; header?: 'x-consul-token' | 'bearer' | 'query' } = {},
): Promise<{ status: number; text: string; json: unknown; headers: Headers }> {
  const headers: Record<string, string> = {};
  let url = `http://${address}${path}`;
  if (opts.token !== undefined) {
    const how = opts.header ?? 'x-consul-token';
    if (how === 'x-consul-token') headers['x-consul-token'] = opts.token;
    else if (how === 'bearer') headers['authorization'] = `Bearer ${opts.token}`;
    else url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(opts.token)}`;
  }
  const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

/** Creates a policy and a token linked to it; returns the token's SecretID. */
export async function policyToken(address: string, management: string, name: string, rules: string): Promise<string> {
  const p = await aclCall(address, 'PUT', '/v1/acl/policy', { token: management, body: { Name: name, Description: `weft test: ${name}`, Rules: rules } });
  if (p.status !== 200) throw new Error(`policy ${name}: ${p.status} ${p.text}`);
  const t = await aclCall(address, 'PUT', '/v1/acl/token', { token: management, body: { Description: name, Policies: [{ Name: name }] } });
  if (t.status !== 200) throw new Error(`token ${name}: ${t.status} ${t.text}`);
  return (t.json as { SecretID: string }).SecretID;
}

/** The tokens of weft's components, from the shipped policies. */
export interface ComponentTokens {
  scheduler: string;
  proxy: string;
  prometheus: string;
  /** One per host. */
  agents: Record<string, string>;
}

/** Loads docs/acl/*.hcl as policies weft-scheduler, weft-proxy, weft-prometheus and weft-agent-<host>, with a token each. */
export async function loadShippedPolicies(address: string, management: string, hosts: readonly string[]): Promise<ComponentTokens> {
  const agents: Record<string, string> = {};
  for (const host of hosts) agents[host] = await policyToken(address, management, `weft-agent-${host}`, shippedRules('agent', host));
  return {
    scheduler: await policyToken(address, management, 'weft-scheduler', shippedRules('scheduler')),
    proxy: await policyToken(address, management, 'weft-proxy', shippedRules('proxy')),
    prometheus: await policyToken(address, management, 'weft-prometheus', shippedRules('prometheus')),
    agents,
  };
}
