/**
 * Health probes for `weft up`: each answers "is this piece serving yet?" with a
 * short HTTP request to the piece's own health surface, never throwing (a
 * refused connection simply means "not yet").
 */
import { AGENT_SERVICE, NODE_META } from '../../../base/contracts/meta.js';

/** One probe: resolves true when healthy. */
export type Probe = () => Promise<boolean>;

const PROBE_TIMEOUT_MS = 1000;

/** GETs `url` and hands the answer to `ok`; false on any network error or timeout. */
async function get(url: string, ok: (res: Response) => Promise<boolean> | boolean, headers: Record<string, string> = {}): Promise<boolean> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    try {
      return await ok(res);
    } finally {
      await res.body?.cancel().catch(() => undefined);
    }
  } catch {
    return false;
  }
}

/** `http://host:port` of a Consul address given as `host:port` or a URL. */
export function consulUrl(address: string): string {
  return (/^https?:\/\//.test(address) ? address : `http://${address}`).replace(/\/+$/, '');
}

/** Consul (or the dev agent) answers and has a leader. */
export function consulProbe(address: string): Probe {
  return () => get(`${consulUrl(address)}/v1/status/leader`, async (res) => res.ok && (await res.text()).length > 2);
}

/** The scheduler's unauthenticated health route. */
export function schedulerProbe(apiUrl: string): Probe {
  return () => get(`${apiUrl}/v1/health`, (res) => res.ok);
}

/** This node's `weft-agent` registration exists with its heartbeat passing; `token` reads the catalog under ACLs. */
export function agentProbe(consulAddress: string, node: string, token?: string): Probe {
  return () =>
    get(
      `${consulUrl(consulAddress)}/v1/health/service/${AGENT_SERVICE}?passing=true`,
      async (res) => {
        if (!res.ok) return false;
        const entries = (await res.json()) as Array<{ Service?: { ID?: string; Meta?: Record<string, string> } }>;
        return entries.some((e) => e.Service?.ID === `${AGENT_SERVICE}-${node}`);
      },
      token === undefined ? {} : { 'x-consul-token': token },
    );
}

/** The proxy's `/healthz`: it answers once inbound and outbound listen. */
export function proxyProbe(metricsUrl: string): Probe {
  return () => get(`${metricsUrl}/healthz`, (res) => res.ok);
}

/** The driver this node's agent registered with (Meta weft_driver), for the "what now" text. */
export async function agentDriver(consulAddress: string, node: string): Promise<string | undefined> {
  let driver: string | undefined;
  await get(`${consulUrl(consulAddress)}/v1/agent/service/${AGENT_SERVICE}-${encodeURIComponent(node)}`, async (res) => {
    if (res.ok) driver = ((await res.json()) as { Meta?: Record<string, string> }).Meta?.[NODE_META.driver];
    return true;
  });
  return driver;
}
