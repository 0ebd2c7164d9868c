/**
 * Shared pieces of the agent tests: a logger whose lines the test can read,
 * Consul look-ups, and sleeping.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createDiscoveryClient, type DiscoveryClient } from '../../discovery/client.js';
import type { Logger } from '../../base/log.js';
import type { TeardownHost, TestConsul } from '../helpers/dev-consul.js';

/** A logger that keeps every line as parsed JSON. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** A weft Consul client for the test agent, closed at teardown. */
export function clientFor(t: TeardownHost, c: TestConsul): DiscoveryClient {
  const client = createDiscoveryClient({ consul: { address: c.address } });
  t.teardown(() => client.close());
  return client;
}

/** The agent's services whose ID starts with `prefix`. */
export async function servicesWithPrefix(c: TestConsul, prefix: string): Promise<Array<{ ID: string; Service: string; Address: string; Port: number; Meta: Record<string, string>; Tags: string[] }>> {
  const all = (await c.consul.agent.service.list()) as Record<string, { ID: string; Service: string; Address: string; Port: number; Meta: Record<string, string>; Tags: string[] }>;
  return Object.values(all).filter((s) => s.ID.startsWith(prefix));
}

/** Passing instances of a service (health endpoint, as proxies read it). */
export async function passing(c: TestConsul, service: string): Promise<Array<{ Service: { ID: string; Address: string; Port: number } }>> {
  return (await c.consul.health.service({ service, passing: true })) as Array<{ Service: { ID: string; Address: string; Port: number } }>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
