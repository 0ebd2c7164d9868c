/**
 * Serves Prometheus HTTP SD at /v1/weft/prometheus-sd, so a Prometheus built
 * without consul_sd (Debian's) can find weft's instances with the same labels.
 * It reads through a `consul` client pointed back at this agent: the same code
 * path a scheduler uses against a real Consul. With ACLs the client carries the
 * caller's token (Prometheus: `authorization` in http_sd_configs), so the
 * answer holds what that token may read.
 */
import type { FastifyInstance } from 'fastify';
import type { DiscoveryClient } from '../../client.js';
import { PROMETHEUS_SD_PATH, prometheusTargetGroups, sdFilterFromQuery } from '../../prometheus-sd.js';
import { requestToken } from '../acl/gate.js';

/** Adds the route; `client(token)` is called per request (the client exists only once the agent listens). */
export function prometheusSdRoute(app: FastifyInstance, client: (token: string | undefined) => DiscoveryClient | undefined): void {
  app.get(PROMETHEUS_SD_PATH, async (req, reply) => {
    const c = client(requestToken(req));
    if (c === undefined) return reply.code(503).type('text/plain; charset=utf-8').send('agent starting');
    const groups = await prometheusTargetGroups(c, sdFilterFromQuery(req.query as Record<string, string | string[] | undefined>));
    return reply.type('application/json').send(JSON.stringify(groups));
  });
}
