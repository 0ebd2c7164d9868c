/**
 * The agent's operational endpoints on a single node: leave (answers, then
 * shuts the agent down cleanly), join and force-leave (there is no gossip, so
 * joining another node fails with the error Consul gives for an unreachable
 * one, and only this node can be force-left, which a live node refutes), and
 * host (what the machine looks like, in gopsutil's field names as Consul
 * answers them).
 */
import { readdirSync, readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { serverError } from '../http-error.js';
import { has, param, queryOf, type RouteContext, sendEmpty, sendJson } from './common.js';

const SERF_LAN_PORT = 8301;
const SERF_WAN_PORT = 8302;

/** Registers leave, join, force-leave and host. */
export function agentOpsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.put('/v1/agent/leave', (_req, reply) => {
    const lifecycle = ctx.lifecycle;
    if (lifecycle !== undefined) {
      // Shut down once the 200 is on the wire (or the client is gone), never before.
      let left = false;
      const leave = (): void => {
        if (left) return;
        left = true;
        lifecycle.leave();
      };
      reply.raw.once('finish', leave);
      reply.raw.once('close', leave);
    }
    return sendEmpty(reply);
  });

  app.put('/v1/agent/join/*', (req, reply) => {
    const wan = (param(queryOf(req), 'wan') ?? '') !== '';
    const addr = wildcard(req);
    const { host, port } = splitHostPort(addr, wan ? SERF_WAN_PORT : SERF_LAN_PORT);
    // Joining oneself works in Consul (the agent answers its own gossip port); anything else has nobody to answer.
    if (host === ctx.advertiseAddress && port === (wan ? SERF_WAN_PORT : SERF_LAN_PORT)) return sendEmpty(reply);
    const hp = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
    throw serverError(`1 error occurred:\n\t* Failed to join ${hp}: dial tcp ${hp}: connect: connection refused\n\n`);
  });

  app.put('/v1/agent/force-leave/*', (req, reply) => {
    const node = wildcard(req);
    const wanName = node.endsWith(`.${ctx.datacenter}`) ? node : `${node}.${ctx.datacenter}`;
    const lan = !has(queryOf(req), 'wan') && node === ctx.nodeName;
    // A live node refutes a force-leave of itself, so this succeeds and changes nothing.
    if (lan || wanName === `${ctx.nodeName}.${ctx.datacenter}`) return sendEmpty(reply);
    throw serverError(`agent: No node found with name '${node}'`);
  });

  app.get('/v1/agent/host', (_req, reply) => sendJson(reply, hostInfo()));
}

function wildcard(req: FastifyRequest): string {
  return (req.params as Record<string, string>)['*'] ?? '';
}

/** `host`, `host:port` or `[v6]:port`; the default port when none is given. */
function splitHostPort(addr: string, defaultPort: number): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  if (v6 !== null) return { host: v6[1]!, port: v6[2] === undefined ? defaultPort : Number(v6[2]) };
  if (isIP(addr) === 6) return { host: addr, port: defaultPort };
  const colon = addr.lastIndexOf(':');
  if (colon !== -1 && /^\d+$/.test(addr.slice(colon + 1))) return { host: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) };
  return { host: addr, port: defaultPort };
}

/** Consul's debug.HostInfo: Memory, CPU, Host, Disk (of /), CollectionTime in ns, Errors. */
export function hostInfo(): Record<string, unknown> {
  const errors: unknown[] = [];
  const attempt = <T>(fn: () => T): T | null => {
    try {
      return fn();
    } catch (err) {
      errors.push({ message: (err as Error).message });
      return null;
    }
  };
  return {
    Memory: attempt(memory),
    CPU: attempt(cpus),
    Host: attempt(host),
    Disk: attempt(() => disk('/')),
    CollectionTime: Date.now() * 1e6,
    Errors: errors.length === 0 ? null : errors,
  };
}

function memory(): Record<string, number> {
  const info = readKeyValues('/proc/meminfo', ':');
  const kib = (k: string): number | undefined => {
    const v = info[k];
    return v === undefined ? undefined : Number.parseInt(v, 10) * 1024;
  };
  const total = kib('MemTotal') ?? os.totalmem();
  const free = kib('MemFree') ?? os.freemem();
  const buffers = kib('Buffers') ?? 0;
  const cached = (kib('Cached') ?? 0) + (kib('SReclaimable') ?? 0);
  const available = kib('MemAvailable') ?? free + buffers + cached;
  const used = total - free - buffers - cached;
  return {
    total,
    available,
    used,
    usedPercent: total === 0 ? 0 : (used / total) * 100,
    free,
    active: kib('Active') ?? 0,
    inactive: kib('Inactive') ?? 0,
    wired: 0,
    laundry: 0,
    buffers,
    cached,
    writeBack: kib('Writeback') ?? 0,
    dirty: kib('Dirty') ?? 0,
    writeBackTmp: kib('WritebackTmp') ?? 0,
    shared: kib('Shmem') ?? 0,
    slab: kib('Slab') ?? 0,
    sreclaimable: kib('SReclaimable') ?? 0,
    sunreclaim: kib('SUnreclaim') ?? 0,
    pageTables: kib('PageTables') ?? 0,
    swapCached: kib('SwapCached') ?? 0,
    commitLimit: kib('CommitLimit') ?? 0,
    committedAS: kib('Committed_AS') ?? 0,
    swapTotal: kib('SwapTotal') ?? 0,
    swapFree: kib('SwapFree') ?? 0,
    mapped: kib('Mapped') ?? 0,
  };
}

function cpus(): Array<Record<string, unknown>> {
  return os.cpus().map((c, i) => ({
    cpu: i,
    vendorId: '',
    family: '',
    model: '',
    stepping: 0,
    physicalId: '',
    coreId: String(i),
    cores: 1,
    modelName: c.model,
    mhz: c.speed,
    cacheSize: 0,
    flags: [],
    microcode: '',
  }));
}

function host(): Record<string, unknown> {
  const release = readKeyValues('/etc/os-release', '=');
  const unquote = (v: string | undefined): string => (v ?? '').replace(/^"(.*)"$/, '$1');
  let procs = 0;
  try {
    procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
  } catch {
    // not Linux: no process count
  }
  const uptime = Math.floor(os.uptime());
  return {
    hostname: os.hostname(),
    uptime,
    bootTime: Math.floor(Date.now() / 1000) - uptime,
    procs,
    os: os.platform(),
    platform: unquote(release['ID']),
    platformFamily: unquote(release['ID_LIKE']) || unquote(release['ID']),
    platformVersion: unquote(release['VERSION_ID']),
    kernelVersion: os.release(),
    kernelArch: os.machine(),
    virtualizationSystem: '',
    virtualizationRole: '',
    hostId: readFirstLine('/etc/machine-id'),
  };
}

/** Filesystem types gopsutil names, by statfs magic number. */
const FS_TYPES = new Map<number, string>([
  [0xef53, 'ext2/ext3'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x794c7630, 'overlayfs'],
  [0x01021994, 'tmpfs'],
  [0x2fc12fc1, 'zfs'],
]);

function disk(path: string): Record<string, unknown> {
  const s = statfsSync(path);
  const total = s.blocks * s.bsize;
  const free = s.bavail * s.bsize;
  const used = (s.blocks - s.bfree) * s.bsize;
  const inodesUsed = s.files - s.ffree;
  return {
    path,
    fstype: FS_TYPES.get(s.type) ?? '',
    total,
    free,
    used,
    usedPercent: used + free === 0 ? 0 : (used / (used + free)) * 100,
    inodesTotal: s.files,
    inodesUsed,
    inodesFree: s.ffree,
    inodesUsedPercent: s.files === 0 ? 0 : (inodesUsed / s.files) * 100,
  };
}

function readKeyValues(file: string, sep: string): Record<string, string> {
  const out: Record<string, string> = {};
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const i = line.indexOf(sep);
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

function readFirstLine(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n')[0]!.trim();
  } catch {
    return '';
  }
}
