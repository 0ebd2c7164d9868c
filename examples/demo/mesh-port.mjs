// Finds a service's outbound port on its host: the agent gives every local
// service its own port on the host proxy (the port tells the proxy who is
// calling) and lists them in <dataDir>/proxy/local.json, which the job mounts
// as the host volume `weft-proxy` (the task finds it in $WEFT_VOLUME_WEFT_PROXY).
// The port is assigned once the task is registered, so it is looked up when
// needed and re-read while it is not there yet.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Returns a function that resolves `service`'s outbound port, or undefined while it has none. */
export function outboundPort(service, env = process.env) {
  const dir = env.WEFT_VOLUME_WEFT_PROXY;
  let port;
  let checkedAt = 0;
  return () => {
    if (port !== undefined) return port;
    const now = Date.now();
    if (dir === undefined || now - checkedAt < 500) return undefined;
    checkedAt = now;
    try {
      const doc = JSON.parse(readFileSync(join(dir, 'local.json'), 'utf8'));
      port = doc.services?.find((s) => s.service === service)?.outboundPort;
    } catch {
      // not written yet
    }
    return port;
  };
}
