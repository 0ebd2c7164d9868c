/** The embedded Consul-HTTP-API-compatible dev agent (placeholder: the interface the CLI uses). */
import type { Logger } from '../../src/log.js';

export interface DevConsulOptions {
  /** Address to listen on (default 127.0.0.1). */
  bind: string;
  /** HTTP port; 0 picks a free one. */
  port: number;
  /** Directory for persisted state (KV, registrations, sessions, index). */
  dataDir: string;
  nodeName: string;
  datacenter: string;
  logger?: Logger;
}

export interface DevConsul {
  /** `host:port` the agent answers on. */
  readonly address: string;
  readonly port: number;
  /** Stops checks and timers, persists state, closes the listener. */
  close(): Promise<void>;
}

/** Starts the agent. */
export async function startDevConsul(_opts: DevConsulOptions): Promise<DevConsul> {
  throw new Error('not yet');
}
