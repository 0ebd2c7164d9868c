/**
 * The two probes the agent runs itself, with Consul's verdicts and output
 * text (agent/checks/check.go): HTTP — 2xx passing, 429 warning, anything
 * else critical, "HTTP GET <url>: 200 OK Output: <body>"; TCP — a connect
 * is passing, "TCP connect <addr>: Success". Errors read like Go's.
 */
import { request as httpRequest, STATUS_CODES } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { CheckStatus } from '../state/types.js';

/** One probe's verdict. */
export interface ProbeResult {
  readonly status: CheckStatus;
  readonly output: string;
}

/** Consul's default cap on captured output (4 KiB). */
export const DEFAULT_OUTPUT_MAX_SIZE = 4096;

/** What an HTTP probe needs. */
export interface HttpProbe {
  readonly url: string;
  readonly method?: string;
  readonly header?: Readonly<Record<string, readonly string[]>>;
  readonly body?: string;
  readonly timeoutMs: number;
  readonly tlsSkipVerify?: boolean;
  readonly disableRedirects?: boolean;
  readonly outputMaxSize?: number;
}

/** Runs an HTTP check once. Keep-alive is off, as in Consul, so no sockets outlive the probe. */
export async function probeHttp(p: HttpProbe): Promise<ProbeResult> {
  const method = p.method ?? 'GET';
  const max = p.outputMaxSize ?? DEFAULT_OUTPUT_MAX_SIZE;
  const deadline = Date.now() + p.timeoutMs;
  let url = p.url;
  for (let hop = 0; ; hop++) {
    let res: { status: number; body: Buffer; location?: string };
    try {
      res = await once(url, method, p, Math.max(1, deadline - Date.now()), max);
    } catch (err) {
      return { status: 'critical', output: goHttpError(method, url, err) };
    }
    if (!p.disableRedirects && res.location !== undefined && res.status >= 300 && res.status < 400 && hop < 10) {
      url = new URL(res.location, url).toString();
      continue;
    }
    const statusText = `${res.status} ${STATUS_CODES[res.status] ?? ''}`.trim();
    const output = `HTTP ${method} ${p.url}: ${statusText} Output: ${truncate(res.body, max)}`;
    if (res.status >= 200 && res.status <= 299) return { status: 'passing', output };
    if (res.status === 429) return { status: 'warning', output };
    return { status: 'critical', output };
  }
}

/** Runs a TCP check once: connect, then close. */
export function probeTcp(address: string, timeoutMs: number): Promise<ProbeResult> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (r: ProbeResult): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ status: 'critical', output: `dial tcp ${address}: i/o timeout` }), timeoutMs);
    socket.once('connect', () => finish({ status: 'passing', output: `TCP connect ${address}: Success` }));
    socket.once('error', (err) => finish({ status: 'critical', output: goDialError(address, err) }));
  });
}

function once(
  url: string,
  method: string,
  p: HttpProbe,
  timeoutMs: number,
  max: number,
): Promise<{ status: number; body: Buffer; location?: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const headers: Record<string, string | string[]> = {
      'User-Agent': 'Consul Health Check',
      Accept: 'text/plain, text/*, */*',
      Connection: 'close',
    };
    for (const [k, v] of Object.entries(p.header ?? {})) headers[k] = [...v];
    const opts = { method, headers, agent: false as const, rejectUnauthorized: p.tlsSkipVerify !== true };
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, opts, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < max) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => {
        clearTimeout(timer);
        const out: { status: number; body: Buffer; location?: string } = { status: res.statusCode ?? 0, body: Buffer.concat(chunks) };
        if (typeof res.headers.location === 'string') out.location = res.headers.location;
        resolve(out);
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('timeout'), { code: 'WEFT_TIMEOUT' })), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(p.body);
  });
}

function truncate(body: Buffer, max: number): string {
  return body.subarray(0, max).toString('utf8');
}

function goHttpError(method: string, url: string, err: unknown): string {
  const verb = method.charAt(0) + method.slice(1).toLowerCase();
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'WEFT_TIMEOUT') return `${verb} "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`;
  let addr = url;
  try {
    const u = new URL(url);
    addr = `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    return `${verb} "${url}": ${e.message}`;
  }
  return `${verb} "${url}": ${goDialError(addr, e)}`;
}

function goDialError(address: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `dial tcp ${address}: connect: connection refused`;
    case 'ECONNRESET':
      return `read tcp ${address}: read: connection reset by peer`;
    case 'EHOSTUNREACH':
      return `dial tcp ${address}: connect: no route to host`;
    case 'ENOTFOUND':
      return `dial tcp: lookup ${address.replace(/:\d+$/, '')}: no such host`;
    default:
      return `dial tcp ${address}: ${err.message}`;
  }
}

/** Splits "host:port" or "[v6]:port". */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]*):(\d+)$/.exec(address);
  if (m === null) return { host: address, port: 0 };
  return { host: m[1]!, port: Number(m[2]) };
}
