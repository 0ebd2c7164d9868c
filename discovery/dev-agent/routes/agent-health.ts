/**
 * /v1/agent/health/service/{id,name}/*: the aggregated health of this agent's
 * own service instances, for load balancers and readiness probes. The status
 * is the worst of the instance's checks and the agent's node checks
 * (maintenance wins, then critical, warning, passing; no checks is passing)
 * and picks the HTTP code: 200 passing, 429 warning, 503 critical or
 * maintenance, 404 unknown. `?format=text` (or `Accept: text/plain`) answers
 * the status alone as text; X-Consul-Reason carries it either way.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NODE_MAINT_CHECK, SERVICE_MAINT_PREFIX } from '../agent.js';
import { badRequest } from '../http-error.js';
import type { CheckRecord, ServiceRecord } from '../state/types.js';
import { agentServiceJson } from '../state/views.js';
import { param, queryOf, type RouteContext } from './common.js';

type Aggregated = 'passing' | 'warning' | 'critical' | 'maintenance';

/** Registers the agent health routes. */
export function agentHealthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;
  const localServices = (): ServiceRecord[] => store.servicesOfNode(ctx.nodeName).filter((s) => s.local);

  app.get('/v1/agent/health/service/id/*', (req, reply) => {
    const id = wildcard(req);
    if (id === '') throw badRequest('Missing serviceID');
    const service = localServices().find((s) => s.id === id);
    if (service === undefined) {
      const reason = `ServiceId ${id} not found`;
      if (wantsText(req)) return sendText(reply, 404, reason, reason);
      return sendStatusJson(reply, 404, reason, { AggregatedStatus: 'critical', Service: null, Checks: null });
    }
    const h = instanceHealth(ctx, service);
    if (wantsText(req)) return sendText(reply, h.code, h.status, h.status);
    return sendStatusJson(reply, h.code, h.status, h.json);
  });

  app.get('/v1/agent/health/service/name/*', (req, reply) => {
    const name = wildcard(req);
    if (name === '') throw badRequest('Missing service Name');
    let code = 404;
    let status = `ServiceName ${name} Not Found`;
    const out: unknown[] = [];
    for (const s of localServices()
      .filter((x) => x.name === name)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      const h = instanceHealth(ctx, s);
      out.push(h.json);
      // The worst instance decides: passing 200 < warning 429 < critical/maintenance 503.
      if (code === 404 || h.code > code) {
        code = h.code;
        status = h.status;
      }
    }
    if (wantsText(req)) return sendText(reply, code, status, status);
    return sendStatusJson(reply, code, status, out);
  });
}

function instanceHealth(ctx: RouteContext, s: ServiceRecord): { code: number; status: Aggregated; json: Record<string, unknown> } {
  // The agent's own checks: the instance's and the node-level ones (serfHealth is the catalog's, not the agent's).
  const checks = ctx.store
    .checksOfNode(ctx.nodeName)
    .filter((c) => c.local && (c.serviceId === '' || c.serviceId === s.id));
  const status = aggregate(checks);
  const code = status === 'passing' ? 200 : status === 'warning' ? 429 : 503;
  return {
    code,
    status,
    json: { AggregatedStatus: status, Service: agentServiceJson(s, ctx.datacenter), Checks: checks.map((c) => apiCheckJson(c, s)) },
  };
}

/** Consul's HealthChecks.AggregatedStatus. */
function aggregate(checks: readonly CheckRecord[]): Aggregated {
  let maintenance = false;
  let critical = false;
  let warning = false;
  for (const c of checks) {
    if (c.checkId === NODE_MAINT_CHECK || c.checkId.startsWith(SERVICE_MAINT_PREFIX)) maintenance = true;
    else if (c.status === 'critical') critical = true;
    else if (c.status === 'warning') warning = true;
  }
  return maintenance ? 'maintenance' : critical ? 'critical' : warning ? 'warning' : 'passing';
}

/**
 * A check as these endpoints show it (api.HealthCheck filled with the
 * identifying fields only, as Consul does: no Type, definition or indexes).
 */
function apiCheckJson(c: CheckRecord, s: ServiceRecord): Record<string, unknown> {
  return {
    Node: c.node,
    CheckID: c.checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: c.serviceId,
    ServiceName: c.serviceName,
    ServiceTags: c.serviceId === '' ? null : [...s.tags], // a node check has none (Go's nil slice)
    Type: '',
    ExposedPort: 0,
    Definition: {
      Interval: '0s',
      Timeout: '0s',
      DeregisterCriticalServiceAfter: '0s',
      HTTP: '',
      Header: null,
      Method: '',
      Body: '',
      TLSServerName: '',
      TLSSkipVerify: false,
      TCP: '',
      TCPUseTLS: false,
      UDP: '',
      GRPC: '',
      OSService: '',
      GRPCUseTLS: false,
    },
    CreateIndex: 0,
    ModifyIndex: 0,
  };
}

/** Consul answers text when Accept starts with text/plain or ?format=text. */
function wantsText(req: FastifyRequest): boolean {
  if ((req.headers.accept ?? '').startsWith('text/plain')) return true;
  return param(queryOf(req), 'format') === 'text';
}

function sendText(reply: FastifyReply, code: number, reason: string, body: string): FastifyReply {
  return reply.code(code).header('X-Consul-Reason', reason).header('Content-Type', 'text/plain').send(Buffer.from(body));
}

function sendStatusJson(reply: FastifyReply, code: number, reason: string, value: unknown): FastifyReply {
  return reply.code(code).header('X-Consul-Reason', reason).header('Content-Type', 'application/json').send(Buffer.from(JSON.stringify(value)));
}

function wildcard(req: FastifyRequest): string {
  return (req.params as Record<string, string>)['*'] ?? '';
}
