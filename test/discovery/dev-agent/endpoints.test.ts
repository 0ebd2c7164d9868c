/**
 * The read and operator endpoints Consul's CLI and dashboards use on one
 * agent, checked against Consul's documented answers: agent/health/service
 * (aggregated status and 200/429/503/404), catalog/node-services,
 * agent/metrics (JSON and Prometheus), agent/host, agent/members?wan,
 * join/force-leave errors, leave, reload, operator/raft/configuration and
 * coordinate/*.
 */
import { hostname } from 'node:os';
import t from 'tap';
import { MetricsSink, pathLabel } from '../../../discovery/dev-agent/routes/metrics.js';
import { consulError, startTestConsul } from '../../helpers/dev-consul.js';

async function http(address: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`http://${address}${path}`, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as unknown };
}

t.test('agent/health/service/id and /name aggregate status into 200/429/503 and 404', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.agent.service.register({ name: 'web', id: 'web-1', port: 80, tags: ['v1'], checks: [{ ttl: '1h', status: 'passing' }] } as never);
  await consul.agent.service.register({ name: 'web', id: 'web-2', port: 81, checks: [{ ttl: '1h', status: 'passing' }] } as never);

  const ok = await http(address, '/v1/agent/health/service/id/web-1');
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('content-type'), 'application/json');
  t.equal(ok.headers.get('x-consul-reason'), 'passing');
  const body = ok.json() as { AggregatedStatus: string; Service: Record<string, unknown>; Checks: Array<Record<string, unknown>> };
  t.strictSame(Object.keys(body), ['AggregatedStatus', 'Service', 'Checks']);
  t.equal(body.AggregatedStatus, 'passing');
  t.match(body.Service, { ID: 'web-1', Service: 'web', Port: 80, Tags: ['v1'], Datacenter: 'dc1' });
  t.match(body.Checks, [{ Node: 'weft-test', CheckID: 'service:web-1', Status: 'passing', ServiceID: 'web-1', ServiceName: 'web', ServiceTags: ['v1'] }]);
  t.equal(body.Checks.length, 1, "serfHealth is the catalog's check, not the agent's");

  const text = await http(address, '/v1/agent/health/service/id/web-1?format=text');
  t.strictSame([text.status, text.text, text.headers.get('content-type')], [200, 'passing', 'text/plain']);
  const accept = await http(address, '/v1/agent/health/service/id/web-1', { headers: { accept: 'text/plain' } });
  t.strictSame([accept.status, accept.text], [200, 'passing'], 'Accept: text/plain works like ?format=text');

  await consul.agent.check.warn('service:web-1');
  t.equal((await http(address, '/v1/agent/health/service/id/web-1')).status, 429, 'warning: 429');
  const byName = await http(address, '/v1/agent/health/service/name/web');
  t.equal(byName.status, 429, 'by name: the worst instance decides');
  t.equal(byName.headers.get('x-consul-reason'), 'warning');
  t.strictSame(
    (byName.json() as Array<{ AggregatedStatus: string; Service: { ID: string } }>).map((e) => [e.Service.ID, e.AggregatedStatus]),
    [
      ['web-1', 'warning'],
      ['web-2', 'passing'],
    ],
  );

  await consul.agent.check.fail('service:web-2');
  t.strictSame([(await http(address, '/v1/agent/health/service/id/web-2')).status, (await http(address, '/v1/agent/health/service/name/web?format=text')).text], [503, 'critical']);

  await consul.agent.check.pass('service:web-2');
  await consul.agent.service.maintenance({ id: 'web-2', enable: true } as never);
  const maint = await http(address, '/v1/agent/health/service/id/web-2');
  t.equal(maint.status, 503, 'maintenance: 503');
  t.equal((maint.json() as { AggregatedStatus: string }).AggregatedStatus, 'maintenance');
  await consul.agent.service.maintenance({ id: 'web-2', enable: false } as never);
  await consul.agent.maintenance({ enable: true } as never);
  t.equal((await http(address, '/v1/agent/health/service/id/web-2?format=text')).text, 'maintenance', 'node maintenance counts for every instance');
  const nodeMaint = (await http(address, '/v1/agent/health/service/id/web-2')).json() as { Checks: Array<Record<string, unknown>> };
  t.match(
    nodeMaint.Checks.find((c) => c['CheckID'] === '_node_maintenance'),
    { Status: 'critical', ServiceID: '', ServiceTags: null },
    "the agent's node-level checks are part of every instance's health",
  );
  await consul.agent.maintenance({ enable: false } as never);

  const noId = await http(address, '/v1/agent/health/service/id/nope');
  t.equal(noId.status, 404);
  t.strictSame(noId.json(), { AggregatedStatus: 'critical', Service: null, Checks: null });
  t.equal(noId.headers.get('x-consul-reason'), 'ServiceId nope not found');
  t.strictSame([(await http(address, '/v1/agent/health/service/id/nope?format=text')).text], ['ServiceId nope not found']);
  const noName = await http(address, '/v1/agent/health/service/name/nope');
  t.strictSame([noName.status, noName.json()], [404, []]);
  t.equal((await http(address, '/v1/agent/health/service/name/nope?format=text')).text, 'ServiceName nope Not Found');

  await consul.agent.service.register({ name: 'bare', port: 1 } as never);
  t.strictSame([(await http(address, '/v1/agent/health/service/name/bare?format=text')).text], ['passing'], 'no checks: passing');
});

t.test('catalog/node-services lists a node and its services as a list', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.agent.service.register({ name: 'web', id: 'web-2', port: 81 } as never);
  await consul.agent.service.register({ name: 'web', id: 'web-1', port: 80, tags: ['v1'] } as never);
  const r = await http(address, '/v1/catalog/node-services/weft-test');
  t.equal(r.status, 200);
  t.ok(Number(r.headers.get('x-consul-index')) >= 1, 'blocking query headers');
  const body = r.json() as { Node: Record<string, unknown>; Services: Array<Record<string, unknown>> };
  t.match(body.Node, { Node: 'weft-test', Address: '127.0.0.1', Datacenter: 'dc1' });
  t.strictSame(
    body.Services.map((s) => s['ID']),
    ['consul', 'web-1', 'web-2'],
  );
  t.match(body.Services[1], { ID: 'web-1', Service: 'web', Tags: ['v1'], Port: 80 });
  const unknown = await http(address, '/v1/catalog/node-services/ghost');
  t.strictSame([unknown.status, unknown.json()], [200, { Node: null, Services: [] }]);

  const parked = http(address, `/v1/catalog/node-services/weft-test?index=${r.headers.get('x-consul-index')}&wait=5m`);
  await consul.agent.service.register({ name: 'api', port: 90 } as never);
  t.ok(
    ((await parked).json() as { Services: Array<{ ID: string }> }).Services.some((s) => s.ID === 'api'),
    'blocks until the node changes',
  );
});

t.test('agent/metrics answers go-metrics JSON and Prometheus text', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.agent.self();
  await consul.kv.set('a', 'b');
  const r = await http(address, '/v1/agent/metrics');
  t.equal(r.status, 200);
  t.equal(r.headers.get('content-type'), 'application/json');
  const m = r.json() as { Timestamp: string; Gauges: Array<{ Name: string; Value: number; Labels: object }>; Points: unknown[]; Counters: unknown[]; Samples: unknown[] };
  t.strictSame(Object.keys(m), ['Timestamp', 'Gauges', 'Points', 'Counters', 'Samples']);
  t.match(m.Timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d0 \+0000 UTC$/, 'a 10 s interval, in Go time format');
  const gauge = (name: string) => m.Gauges.find((g) => g.Name === name);
  t.strictSame(gauge('consul.state.nodes'), { Name: 'consul.state.nodes', Value: 1, Labels: {} });
  t.equal(gauge('consul.state.kv_entries')?.Value, 1);
  t.ok((gauge('consul.runtime.alloc_bytes')?.Value ?? 0) > 0);

  const p = await http(address, '/v1/agent/metrics?format=prometheus');
  t.equal(p.status, 200);
  t.equal(p.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  t.match(p.text, /^# TYPE consul_state_nodes gauge\nconsul_state_nodes 1$/m);
  t.match(p.text, /^# TYPE consul_api_http summary$/m);
  const count = /^consul_api_http_count\{method="GET",path="v1\.agent\.self"\} (\d+)$/m.exec(p.text);
  t.equal(count?.[1], '1', 'each request is timed with method and path labels');
  t.match(p.text, /^consul_api_http_count\{method="PUT",path="v1\.kv\._"\} 1$/m, 'keys are an underscore');
  const om = await http(address, '/v1/agent/metrics', { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  t.match(om.text, /^# TYPE consul_state_nodes gauge$/m, 'an OpenMetrics Accept header asks for the same');
});

t.test('the metrics sink shows the last finished 10 s interval, as go-metrics does', async (t) => {
  let now = 1_700_000_005_000;
  const sink = new MetricsSink(() => now);
  sink.sample('consul.api.http', { method: 'GET', path: 'v1.kv._' }, 2);
  sink.sample('consul.api.http', { method: 'GET', path: 'v1.kv._' }, 4);
  const current = sink.display([]);
  t.equal(current['Timestamp'], '2023-11-14 22:13:20 +0000 UTC', 'only one interval: the current one');
  t.strictSame(current['Samples'], [
    { Name: 'consul.api.http', Count: 2, Rate: 0.6, Sum: 6, Min: 2, Max: 4, Mean: 3, Stddev: Math.SQRT2, Labels: { method: 'GET', path: 'v1.kv._' } },
  ]);
  now += 10_000;
  sink.sample('consul.api.http', { method: 'GET', path: 'v1.kv._' }, 10);
  const later = sink.display([{ name: 'g', value: 1 }]);
  t.equal(later['Timestamp'], '2023-11-14 22:13:20 +0000 UTC', 'the finished interval, not the one being filled');
  t.equal((later['Samples'] as Array<{ Count: number }>)[0]?.Count, 2);
  t.strictSame(later['Gauges'], [{ Name: 'g', Value: 1, Labels: {} }]);
  t.match(sink.prometheus([]), /consul_api_http_sum\{method="GET",path="v1\.kv\._"\} 16\nconsul_api_http_count\{method="GET",path="v1\.kv\._"\} 3/, 'Prometheus totals are cumulative');
  t.strictSame(['/v1/agent/self', '/v1/kv/*', '/v1/agent/service/:id', '/v1/event/fire/*'].map(pathLabel), ['v1.agent.self', 'v1.kv._', 'v1.agent.service._', 'v1.event.fire._']);
});

t.test('agent/host describes the machine in gopsutil field names', async (t) => {
  const { address } = await startTestConsul(t);
  const r = await http(address, '/v1/agent/host');
  t.equal(r.status, 200);
  const h = r.json() as Record<string, Record<string, unknown> & unknown[]>;
  t.strictSame(Object.keys(h), ['Memory', 'CPU', 'Host', 'Disk', 'CollectionTime', 'Errors']);
  t.ok((h['Memory']!['total'] as number) > 0);
  t.type(h['Memory']!['usedPercent'], 'number');
  t.ok(Array.isArray(h['CPU']) && h['CPU'].length > 0);
  t.match(h['CPU']![0], { cpu: 0, modelName: String, mhz: Number });
  t.match(h['Host'], { hostname: hostname(), os: process.platform, kernelVersion: String });
  t.match(h['Disk'], { path: '/', total: Number, free: Number, used: Number, usedPercent: Number });
  t.type(h['CollectionTime'], 'number');
  t.equal(h['Errors'], null);
});

t.test('members: the LAN shape, the WAN shape with ?wan, and Consul segment errors', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const lan = (await consul.agent.members()) as Array<Record<string, unknown>>;
  t.match(lan, [{ Name: 'weft-test', Addr: '127.0.0.1', Port: 8301, Status: 1, Tags: { role: 'consul', dc: 'dc1' } }]);
  const wan = (await consul.agent.members({ wan: true } as never)) as Array<Record<string, unknown>>;
  t.equal(wan.length, 1);
  t.match(wan[0], { Name: 'weft-test.dc1', Addr: '127.0.0.1', Port: 8302, Status: 1, Tags: { role: 'consul', dc: 'dc1', port: '8300' } });
  t.strictSame(Object.keys(wan[0]!), Object.keys(lan[0]!), 'the same member fields');
  const segWan = await http(address, '/v1/agent/members?wan=1&segment=alpha');
  t.strictSame([segWan.status, segWan.text], [400, 'Cannot provide a segment with wan=true']);
  t.equal((await http(address, '/v1/agent/members?wan=1&segment=_all')).status, 200);
  const seg = await http(address, '/v1/agent/members?segment=alpha');
  t.strictSame([seg.status, seg.text], [500, 'Network segments are not supported in this version of Consul']);
});

t.test('join and force-leave answer what Consul answers without anyone to gossip with', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const join = await consulError(consul.agent.join('10.0.0.9'));
  t.equal(join.statusCode, 500);
  t.equal(join.body, '1 error occurred:\n\t* Failed to join 10.0.0.9:8301: dial tcp 10.0.0.9:8301: connect: connection refused\n\n');
  const wan = await http(address, '/v1/agent/join/10.0.0.9:9302?wan=1', { method: 'PUT' });
  t.strictSame([wan.status, wan.text], [500, '1 error occurred:\n\t* Failed to join 10.0.0.9:9302: dial tcp 10.0.0.9:9302: connect: connection refused\n\n']);
  const v6 = await http(address, '/v1/agent/join/[fd00::9]', { method: 'PUT' });
  t.match(v6.text, /Failed to join \[fd00::9\]:8301/);
  t.equal(await consul.agent.join('127.0.0.1'), undefined, 'joining itself succeeds');

  const ghost = await consulError(consul.agent.forceLeave('ghost'));
  t.strictSame([ghost.statusCode, ghost.body], [500, "agent: No node found with name 'ghost'"]);
  t.equal(await consul.agent.forceLeave('weft-test'), undefined, 'a live node refutes a force-leave of itself: 200, nothing changes');
  t.equal((await http(address, '/v1/agent/force-leave/weft-test.dc1?wan', { method: 'PUT' })).status, 200);
  t.equal(((await consul.agent.members()) as unknown[]).length, 1);
});

t.test('reload answers 200 without a reload hook, and leave answers 200 then shuts the agent down', async (t) => {
  const c = await startTestConsul(t);
  t.equal(await c.consul.agent.reload(), undefined);
  await c.consul.kv.set('kept', 'yes');
  const leave = await http(c.address, '/v1/agent/leave', { method: 'PUT' });
  t.strictSame([leave.status, leave.text], [200, '']);
  t.equal(await c.agent.stopped, 'leave', 'the agent stopped because of the leave');
  const after = await fetch(`http://${c.address}/v1/agent/self`).then(
    () => 'answered',
    () => 'refused',
  );
  t.equal(after, 'refused', 'nothing listens any more');
  await c.restart();
  t.equal((await c.consul.kv.get('kept')) !== undefined, true, 'state was persisted on the way out');
  await c.close();
  t.equal(await c.agent.stopped, 'close');
});

t.test('operator/raft/configuration: one voter, itself, the leader', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const self = (await consul.agent.self()) as { Config: { NodeID: string } };
  for (const q of ['', '?stale']) {
    const r = await http(address, `/v1/operator/raft/configuration${q}`);
    t.equal(r.status, 200);
    const body = r.json() as { Servers: Array<Record<string, unknown>>; Index: number };
    t.strictSame(Object.keys(body), ['Servers', 'Index']);
    t.equal(body.Servers.length, 1);
    t.match(body.Servers[0], { ID: self.Config.NodeID, Node: 'weft-test', Address: '127.0.0.1:8300', Leader: true, Voter: true, ProtocolVersion: '3' });
    t.equal(body.Servers[0]!['Address'], await consul.status.leader(), 'the same server status/leader names');
  }
  t.equal((await http(address, '/v1/operator/raft/configuration?dc=dc9')).status, 500);
});

t.test('coordinate/nodes, node/:node and datacenters describe one node', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.catalog.register({ Node: 'ext', Address: '10.0.0.9' } as never);
  const coord = { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 };
  const nodes = await http(address, '/v1/coordinate/nodes');
  t.equal(nodes.status, 200);
  t.ok(Number(nodes.headers.get('x-consul-index')) >= 1);
  t.strictSame(nodes.json(), [{ Node: 'weft-test', Segment: '', Coord: coord }], 'a catalog-only node has no agent and no coordinate');
  t.strictSame((await http(address, '/v1/coordinate/node/weft-test')).json(), [{ Node: 'weft-test', Segment: '', Coord: coord }]);
  const ext = await http(address, '/v1/coordinate/node/ext');
  t.strictSame([ext.status, ext.text], [404, '']);
  t.ok(Number(ext.headers.get('x-consul-index')) >= 1, 'a 404 still carries the index');
  t.strictSame((await http(address, '/v1/coordinate/datacenters')).json(), [{ Datacenter: 'dc1', AreaID: 'WAN', Coordinates: [{ Node: 'weft-test.dc1', Coord: coord }] }]);
  const self = (await consul.agent.self()) as { Coord: unknown };
  t.strictSame(self.Coord, coord, 'the same coordinate agent/self shows');
});
