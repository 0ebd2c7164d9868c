/**
 * A stand-in scheduler API for CLI *rendering* tests: a real fastify server on
 * 127.0.0.1 that implements the routes of base/contracts/scheduler-api.ts with
 * canned answers, validating requests with the contract's schemas and checking
 * every answer against them before it is sent (so the canned data cannot drift
 * from the contract). Scheduling behaviour is not simulated beyond a rollout
 * that advances one instance per status poll; tests of real behaviour run
 * against `weft scheduler` (test/cli/up.test.ts).
 *
 * Job names steer the canned rollout: `stuck` never turns healthy, `doomed`
 * fails; anything else gets one more instance running, then healthy, per poll.
 */
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import {
  type AllocationView,
  type JobStatusResponse,
  ROUTE_SCHEMAS,
  ROUTES,
  routeOf,
} from '../../base/contracts/scheduler-api.js';

/** The fake's token. */
export const FAKE_TOKEN = 'fake-token-0123456789';
/** The clock answers are stamped from (ages render relative to the CLI's own clock). */
export const FAKE_NOW = Date.now();

interface FakeJob {
  name: string;
  version: number;
  group: string;
  count: number;
  polls: number;
  submittedAt: string;
}

/** What a test can inspect after driving the CLI. */
export interface FakeScheduler {
  address: string;
  jobs: Map<string, FakeJob>;
  secrets: Map<string, string>;
  /** Every request's method, URL and Authorization header. */
  requests: Array<{ method: string; url: string; auth: string | undefined; body: unknown }>;
  close(): Promise<void>;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Starts the fake on a free loopback port. */
export async function startFakeScheduler(): Promise<FakeScheduler> {
  const app: FastifyInstance = Fastify({ logger: false });
  const jobs = new Map<string, FakeJob>();
  const secrets = new Map<string, string>();
  const requests: FakeScheduler['requests'] = [];
  app.addContentTypeParser(['application/yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, { spec: body }));
  app.setErrorHandler((err: { validation?: unknown; message: string; statusCode?: number }, _req, reply) => {
    if (err.validation) return reply.code(400).send({ code: 'WEFT_ERR_API_REQUEST_INVALID', message: err.message });
    return reply.code(err.statusCode ?? 500).send({ code: 'WEFT_ERR_SCHEDULER_RESPONSE', message: err.message });
  });
  app.addHook('onRequest', async (req, reply) => {
    requests.push({ method: req.method, url: req.url, auth: req.headers.authorization, body: undefined });
    if (req.url === '/v1/health') return;
    if (req.headers.authorization !== `Bearer ${FAKE_TOKEN}`) {
      return reply.code(401).send({ code: 'WEFT_ERR_API_UNAUTHORIZED', message: 'missing or unknown bearer token' });
    }
  });
  app.addHook('preHandler', async (req) => {
    requests.at(-1)!.body = req.body;
  });

  type Handler = (req: { params: Record<string, string>; body: Record<string, unknown> }) => unknown | { status: number; error: object };
  const route = (name: keyof typeof ROUTES, handler: Handler): void => {
    const { method, path } = routeOf(ROUTES[name]);
    const s = ROUTE_SCHEMAS[name] as { params?: TSchema; body?: TSchema; querystring?: TSchema; response: TSchema };
    app.route({
      method: method as 'GET',
      url: path,
      schema: { ...(s.params ? { params: s.params } : {}), ...(s.body ? { body: s.body } : {}), ...(s.querystring ? { querystring: s.querystring } : {}) },
      handler: async (req, reply) => {
        const out = handler({ params: req.params as Record<string, string>, body: (req.body ?? {}) as Record<string, unknown> });
        if (out && typeof out === 'object' && 'error' in out) {
          const e = out as unknown as { status: number; error: object };
          return reply.code(e.status).send(e.error);
        }
        if (!Value.Check(s.response, out)) throw new Error(`fake scheduler: canned ${name} answer breaks the contract: ${JSON.stringify([...Value.Errors(s.response, out)][0])}`);
        return reply.send(out);
      },
    });
  };
  const notFound = (job: string) => ({ status: 404, error: { code: 'WEFT_ERR_JOB_NOT_FOUND', message: `no job named ${job}`, key: 'job', value: job } });

  route('health', () => ({ status: 'ok', leader: true, version: '0.1.0-fake' }));
  const submit = (body: Record<string, unknown>, store: boolean) => {
    const spec = (typeof body['spec'] === 'string' ? parseYaml(body['spec']) : body['spec']) as { name?: string; groups?: Array<{ name: string; count?: number }> };
    if (typeof spec?.name !== 'string' || !Array.isArray(spec.groups)) {
      return { status: 400, error: { code: 'WEFT_ERR_JOB_INVALID', message: 'job spec is invalid: name: required', key: 'spec', value: [{ path: 'name', message: 'required' }] } };
    }
    const prev = jobs.get(spec.name);
    const job: FakeJob = { name: spec.name, version: (prev?.version ?? 0) + 1, group: spec.groups[0]!.name, count: spec.groups[0]!.count ?? 1, polls: 0, submittedAt: iso(FAKE_NOW - 90_000) };
    if (store) jobs.set(job.name, job);
    return { job, prev };
  };
  route('submitJob', ({ body }) => {
    const r = submit(body, true);
    if ('error' in r) return r;
    const out: Record<string, unknown> = { job: r.job.name, version: r.job.version, change: r.prev ? 'update' : 'create', submittedAt: r.job.submittedAt };
    if (r.prev) out['previousVersion'] = r.prev.version;
    return out;
  });
  route('planJob', ({ body }) => {
    const r = submit(body, false);
    if ('error' in r) return r;
    const place = Array.from({ length: r.job.count }, (_, i) => ({ id: `a${i}`, group: r.job.group, index: i, node: 'node-1', reason: 'new', ports: [20000 + i] }));
    return {
      job: r.job.name,
      version: r.job.version,
      change: 'create',
      place: place.slice(0, 2),
      stop: [],
      failures: r.job.count > 2 ? [{ job: r.job.name, group: r.job.group, missing: r.job.count - 2, nodesEvaluated: 3, reasons: [{ reason: 'memory', count: 3 }], message: '3 nodes lacked memory' }] : [],
      notes: [],
    };
  });
  route('listJobs', () => ({
    jobs: [...jobs.values()].map((j) => ({ name: j.name, version: j.version, stopped: false, submittedAt: j.submittedAt, desired: j.count, running: j.count, healthy: j.name === 'stuck' ? 0 : j.count })),
  }));
  route('jobStatus', ({ params }) => {
    const j = jobs.get(params['job']!);
    if (!j) return notFound(params['job']!);
    j.polls++;
    return statusOf(j);
  });
  route('scaleJob', ({ params, body }) => {
    const j = jobs.get(params['job']!);
    if (!j) return notFound(params['job']!);
    const previous = j.count;
    j.count = body['count'] as number;
    return { job: j.name, group: j.group, count: j.count, previous, version: j.version };
  });
  route('putSplit', ({ params, body }) => ({ service: params['service'], weights: body['weights'] }));
  route('getSplit', ({ params }) => ({ service: params['service'], weights: { v1: 100 } }));
  route('putIntention', ({ params, body }) => ({ source: params['source'], destination: params['destination'], action: body['action'] }));
  route('putSecret', ({ params, body }) => {
    secrets.set(params['name']!, body['value'] as string);
    return { name: params['name'], updatedAt: iso(FAKE_NOW) };
  });
  route('listSecrets', () => ({ secrets: [...secrets.keys()].map((name) => ({ name, updatedAt: iso(FAKE_NOW - 3_600_000) })) }));
  route('deleteSecret', ({ params }) => ({ deleted: secrets.delete(params['name']!) }));
  route('listNodes', () => ({
    nodes: [
      { name: 'node-1', address: '127.0.0.2', readiness: 'ready', heartbeat: 'passing', drain: false, capacity: { cpu: 2000, memory: 4096 }, allocated: { cpu: 300, memory: 192 }, attributes: { zone: 'a' }, drivers: ['process'], hostVolumes: [], allocations: 3 },
      { name: 'node-22', address: '127.0.0.3', readiness: 'draining', heartbeat: 'passing', drain: true, capacity: { cpu: 16000, memory: 65536 }, allocated: { cpu: 0, memory: 0 }, attributes: {}, drivers: ['docker', 'process'], hostVolumes: [], allocations: 0 },
    ],
  }));
  route('drainNode', ({ params, body }) => ({ node: params['node'], drain: body['enable'] }));

  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { address, jobs, secrets, requests, close: () => app.close() };
}

/** The canned rollout: poll k has min(k, count) running and min(k - 1, count) healthy. */
function statusOf(j: FakeJob): JobStatusResponse {
  const running = Math.min(j.polls, j.count);
  const healthy = j.name === 'stuck' ? 0 : Math.min(Math.max(0, j.polls - 1), j.count);
  const allocations: AllocationView[] = Array.from({ length: running }, (_, i) => ({
    id: `${j.name}-${i}-abcd`,
    group: j.group,
    index: i,
    node: 'node-1',
    version: j.version,
    status: j.name === 'doomed' && i === 0 ? 'failed' : 'running',
    healthy: i < healthy,
    ports: [21000 + i],
    createdAt: iso(FAKE_NOW - 30_000),
    tasks: [{ id: `${j.name}-${i}-abcd-${j.group}`, task: j.group, state: 'running', restarts: i }],
  }));
  const doomed = j.name === 'doomed' && j.polls >= 2;
  const done = healthy >= j.count && j.name !== 'doomed';
  return {
    job: j.name,
    version: j.version,
    stopped: false,
    groups: [{ group: j.group, desired: j.count, placed: running, running, healthy }],
    allocations,
    deployment: {
      version: j.version,
      status: doomed ? 'failed' : done ? 'successful' : 'running',
      startedAt: iso(FAKE_NOW - 60_000),
      ...(doomed ? { message: 'allocation doomed-0-abcd not healthy by its deadline (5m)' } : {}),
    },
    events: [{ at: iso(FAKE_NOW - 60_000), type: 'submitted', message: `version ${j.version} submitted`, version: j.version }],
  };
}
