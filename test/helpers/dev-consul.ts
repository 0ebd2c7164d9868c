/**
 * Starts weft's embedded dev Consul agent in-process for a test: 127.0.0.1, a
 * free port, a fresh temporary data directory, and a `consul` npm client
 * pointed at it. Everything is stopped and removed by the test's teardown.
 *
 *   const c = await startTestConsul(t);
 *   await c.consul.kv.set('weft/x', 'y');
 *
 * Timing knobs (session TTL floor, check interval floor, reaper period) are
 * lowered so tests can use 100-300 ms intervals; pass `options` to change them.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Consul from 'consul';
import { type DevConsul, type DevConsulOptions, startDevConsul } from '../../discovery/dev-agent/index.js';

/** The part of a tap Test this helper needs (keeps it usable from any tap version). */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** A running test agent. `agent` and `consul` are replaced by `restart()`. */
export interface TestConsul {
  agent: DevConsul;
  /** A `consul` npm client for this agent. */
  consul: Consul;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Closes the agent (persisting state) and starts a new one on the same port and data directory. */
  restart(): Promise<TestConsul>;
  /** Stops the agent early; teardown does it otherwise. Safe to call twice. */
  close(): Promise<void>;
}

/** Options a test may override; the defaults make timers test-fast. */
export type TestConsulOptions = Partial<Omit<DevConsulOptions, 'port' | 'dataDir'>> & { dataDir?: string };

/** Fast timing defaults for tests; production defaults mirror Consul's. */
export const TEST_TIMING = {
  sessionTtlMin: 50,
  checkIntervalMin: 10,
  checkDeregisterIntervalMin: 0,
  checkReapInterval: 50,
  persistDebounceMs: 20,
} as const;

/** Starts an agent for test `t` and registers its teardown. */
export async function startTestConsul(t: TeardownHost, options: TestConsulOptions = {}): Promise<TestConsul> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'weft-dev-consul-')));
  const base: DevConsulOptions = {
    nodeName: 'weft-test',
    datacenter: 'dc1',
    ...TEST_TIMING,
    ...options,
    bind: '127.0.0.1',
    port: 0,
    dataDir,
  };
  let agent = await startDevConsul(base);
  const host = '127.0.0.1';
  const port = agent.port;
  let closed = false;

  const handle: TestConsul = {
    agent,
    consul: newClient(host, port),
    address: `${host}:${port}`,
    host,
    port,
    dataDir,
    async restart() {
      await agent.close();
      handle.consul.destroy();
      agent = await startDevConsul({ ...base, port });
      handle.agent = agent;
      handle.consul = newClient(host, port);
      return handle;
    },
    async close() {
      if (closed) return;
      closed = true;
      handle.consul.destroy();
      await agent.close();
    },
  };
  t.teardown(async () => {
    await handle.close();
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
  });
  return handle;
}

function newClient(host: string, port: number): Consul {
  return new Consul({ host, port });
}

/** A `consul` client call's answer with its HTTP status and headers (X-Consul-Index, ...). */
export interface WithMeta<T> {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** X-Consul-Index as a number (NaN when absent). */
  readonly index: number;
  readonly body: T;
}

/**
 * Calls a `consul` client method asking it to include the HTTP response (the
 * client's `ctx.includeResponse`), so tests can read headers and pass
 * `index`/`wait` for blocking queries, which the client's types omit.
 *
 *   const r = await withMeta((o) => c.consul.kv.get(o), { key: 'a', index: '7', wait: '2s' });
 */
export async function withMeta<T>(call: (opts: never) => Promise<T>, opts: Record<string, unknown>): Promise<WithMeta<T>> {
  const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
  const out = (await call({ ...opts, ctx } as never)) as unknown as [{ statusCode: number; headers: IncomingHttpHeaders }, T];
  const [res, body] = out;
  return { status: res.statusCode, headers: res.headers, index: Number(res.headers['x-consul-index']), body };
}

/** The HTTP status and body text of a rejected `consul` client call; fails if it did not reject. */
export async function consulError(
  p: Promise<unknown>,
): Promise<{ statusCode: number; body: string; message: string; json: unknown }> {
  try {
    await p;
  } catch (err) {
    const e = err as { statusCode?: number; message: string; response?: { body?: unknown } };
    const body = e.response?.body;
    const text = Buffer.isBuffer(body) ? body.toString() : typeof body === 'object' ? JSON.stringify(body) : String(body ?? '');
    return { statusCode: e.statusCode ?? 0, message: e.message, body: text, json: typeof body === 'object' && !Buffer.isBuffer(body) ? body : undefined };
  }
  throw new Error('expected the Consul call to fail');
}
