/**
 * /v1/event/fire and /v1/event/list against Consul's documented behaviour:
 * the fire answer (ID, Name, Payload base64, filters, Version 1, LTime 0), the
 * agent's ring of received events (oldest first, 256, not persisted), the
 * node/service/tag filters deciding whether this agent receives an event,
 * X-Consul-Index derived from the last event's ID, and blocking on it.
 */
import { request } from 'node:http';
import t from 'tap';
import { consulError, startTestConsul, withMeta } from '../../helpers/dev-consul.js';

interface EventJson {
  ID: string;
  Name: string;
  Payload: string | null;
  NodeFilter: string;
  ServiceFilter: string;
  TagFilter: string;
  Version: number;
  LTime: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Consul's rule, written out independently: hex digits 1-16 of the UUID XOR digits 17-32, unsigned. */
function indexOfId(id: string): string {
  const hex = id.split('-').join('');
  const hi = BigInt.asUintN(64, BigInt(`0x${hex.substring(0, 16)}`));
  const lo = BigInt.asUintN(64, BigInt(`0x${hex.substring(16, 32)}`));
  return (hi ^ lo).toString(10);
}

async function fire(address: string, name: string, body?: string, query = ''): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(`http://${address}/v1/event/fire/${name}${query}`, { method: 'PUT', ...(body === undefined ? {} : { body }) });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

async function list(address: string, query = ''): Promise<{ status: number; index: string | null; events: EventJson[] }> {
  const res = await fetch(`http://${address}/v1/event/list${query}`);
  return { status: res.status, index: res.headers.get('x-consul-index'), events: (await res.json()) as EventJson[] };
}

t.test('fire answers the event as Consul documents it, through the consul client and raw HTTP', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const fired = (await consul.event.fire('deploy', 'v1.2.3')) as unknown as EventJson;
  t.match(fired.ID, UUID);
  t.strictSame(
    { ...fired, ID: '' },
    { ID: '', Name: 'deploy', Payload: 'v1.2.3', NodeFilter: '', ServiceFilter: '', TagFilter: '', Version: 1, LTime: 0 },
    'the client decodes the base64 Payload; LTime is 0 until delivery',
  );

  const raw = await fire(address, 'deploy', 'hello');
  t.equal(raw.status, 200);
  t.equal(raw.type, 'application/json');
  const json = JSON.parse(raw.text) as EventJson;
  t.equal(json.Payload, Buffer.from('hello').toString('base64'), 'Payload is base64 in the JSON');
  t.strictSame(Object.keys(json), ['ID', 'Name', 'Payload', 'NodeFilter', 'ServiceFilter', 'TagFilter', 'Version', 'LTime']);

  const empty = JSON.parse((await fire(address, 'ping')).text) as EventJson;
  t.equal(empty.Payload, null, 'no body: Payload null');
  t.not(empty.ID, json.ID, 'every event gets its own ID');

  const missing = await fire(address, '');
  t.equal(missing.status, 400);
  t.equal(missing.text, 'Missing name');
});

t.test('list returns received events oldest first with Lamport times, filters by name, derives the index from the ID', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const none = await list(address);
  t.strictSame(none.events, []);
  t.equal(none.index, '1', 'an empty list still answers index 1');

  const a = (await consul.event.fire('deploy', 'one')) as unknown as EventJson;
  const b = (await consul.event.fire('restart', 'two')) as unknown as EventJson;
  const c = (await consul.event.fire('deploy', 'three')) as unknown as EventJson;

  const all = (await consul.event.list()) as unknown as EventJson[];
  t.strictSame(
    all.map((e) => [e.ID, e.Name, e.Payload, e.LTime]),
    [
      [a.ID, 'deploy', 'one', 1],
      [b.ID, 'restart', 'two', 2],
      [c.ID, 'deploy', 'three', 3],
    ],
  );
  const r = await list(address);
  t.equal(r.index, indexOfId(c.ID), 'X-Consul-Index: the last event ID, halves XORed');

  const deploys = await list(address, '?name=deploy');
  t.strictSame(
    deploys.events.map((e) => e.ID),
    [a.ID, c.ID],
  );
  t.equal(deploys.index, indexOfId(c.ID));
  const restarts = await withMeta((o) => consul.event.list(o), { name: 'restart' });
  t.equal(String(restarts.headers['x-consul-index']), indexOfId(b.ID), 'the index follows the last event of the filtered list');
  t.strictSame(await list(address, '?name=nothing'), { status: 200, index: '1', events: [] });
});

t.test('a filter that does not match this node means the agent does not receive the event', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.agent.service.register({ name: 'web', id: 'web-1', tags: ['v1', 'blue'], port: 80 } as never);
  await consul.catalog.register({ Node: 'ext', Address: '10.0.0.9', Service: { Service: 'db', Port: 5432 } } as never);

  const cases: Array<[query: string, received: boolean]> = [
    ['?node=weft-test', true],
    ['?node=^weft', true],
    ['?node=(?i)WEFT', true],
    ['?node=other', false],
    ['?service=web', true],
    ['?service=^web-1$', true],
    ['?service=db', false], // db lives on another node: this agent does not run it
    ['?service=web&tag=v1', true],
    ['?service=web&tag=green', false],
    ['?node=weft-test&service=web&tag=bl', true],
    ['?node=other&service=web', false],
  ];
  const expected: string[] = [];
  for (const [query, received] of cases) {
    const r = await fire(address, 'filtered', undefined, query);
    t.equal(r.status, 200, `${query}: fire answers 200 either way`);
    const e = JSON.parse(r.text) as EventJson;
    if (received) expected.push(e.ID);
    const q = new URLSearchParams(query.slice(1));
    t.match(e, { NodeFilter: q.get('node') ?? '', ServiceFilter: q.get('service') ?? '', TagFilter: q.get('tag') ?? '' });
  }
  const got = await list(address);
  t.strictSame(
    got.events.map((e) => e.ID),
    expected,
    'only the events whose filters match this node are listed',
  );
});

t.test('bad filters and oversized events are refused with 500 and Consul wording', async (t) => {
  const { address } = await startTestConsul(t);
  const tagOnly = await fire(address, 'x', undefined, '?tag=v1');
  t.strictSame([tagOnly.status, tagOnly.text], [500, 'Cannot provide tag filter without service filter']);
  const badNode = await fire(address, 'x', undefined, `?node=${encodeURIComponent('(')}`);
  t.equal(badNode.status, 500);
  t.match(badNode.text, /^Invalid node filter: error parsing regexp: /);
  const lookahead = await fire(address, 'x', undefined, `?service=${encodeURIComponent('a(?=b)')}`);
  t.equal(lookahead.status, 500);
  t.match(lookahead.text, /^Invalid service filter: error parsing regexp: invalid or unsupported Perl syntax/);

  const big = await fire(address, 'deploy', 'x'.repeat(1024));
  t.equal(big.status, 500);
  t.match(big.text, /^error broadcasting event: (encoded )?user event exceeds configured limit of 512 bytes/);
  const small = await fire(address, 'deploy', 'x'.repeat(100));
  t.equal(small.status, 200, 'a 100-byte payload fits, as Consul advises');

  t.strictSame(
    (await list(address)).events.map((e) => e.Name),
    ['deploy'],
    'refused events are not delivered',
  );

  const otherDc = await fire(address, 'x', undefined, '?dc=dc9');
  t.strictSame([otherDc.status, otherDc.text], [500, 'No path to datacenter']);
  const badIndex = await fetch(`http://${address}/v1/event/list?index=abc`);
  t.strictSame([badIndex.status, await badIndex.text()], [400, 'Invalid index']);
  const badWait = await fetch(`http://${address}/v1/event/list?index=1&wait=soon`);
  t.strictSame([badWait.status, await badWait.text()], [400, 'Invalid wait time']);
});

t.test('the agent keeps the last 256 events', async (t) => {
  const { address } = await startTestConsul(t);
  for (let i = 0; i < 260; i++) t.equal((await fire(address, 'n', String(i))).status, 200);
  const { events } = await list(address);
  t.equal(events.length, 256);
  t.equal(Buffer.from(events[0]!.Payload!, 'base64').toString(), '4', 'the four oldest are gone');
  t.equal(Buffer.from(events.at(-1)!.Payload!, 'base64').toString(), '259');
});

t.test('a blocking list waits while the index is unchanged and returns when an event fires', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const first = (await consul.event.fire('deploy', 'one')) as unknown as EventJson;
  const idx = indexOfId(first.ID);

  const parked = withMeta((o) => consul.event.list(o), { name: 'deploy', index: idx, wait: '5m' });
  // Another name does not change this list's index, so it keeps waiting through it.
  await fire(address, 'restart');
  const second = (await consul.event.fire('deploy', 'two')) as unknown as EventJson;
  const woke = await parked;
  t.equal(woke.status, 200);
  t.strictSame(
    (woke.body as unknown as EventJson[]).map((e) => e.ID),
    [first.ID, second.ID],
  );
  t.equal(String(woke.headers['x-consul-index']), indexOfId(second.ID));

  // An index that differs from the current one (the index is not monotonic) answers at once.
  const stale = await list(address, `?name=deploy&index=${idx}&wait=5m`);
  t.equal(stale.events.length, 2);

  // Nothing fires: the wait runs out and the same answer comes back.
  const timedOut = await list(address, `?name=deploy&index=${indexOfId(second.ID)}&wait=50ms`);
  t.equal(timedOut.index, indexOfId(second.ID));
  t.equal(timedOut.events.length, 2);

  // An empty list answers index 1; blocking on 1 waits for the first event of that name.
  const firstOfName = withMeta((o) => consul.event.list(o), { name: 'rollback', index: '1', wait: '5m' });
  const rb = (await consul.event.fire('rollback')) as unknown as EventJson;
  const got = await firstOfName;
  t.strictSame(
    (got.body as unknown as EventJson[]).map((e) => e.ID),
    [rb.ID],
  );
});

/** Sends a GET and resolves `sent` once the request is on the wire; `answer` settles with the response. */
function send(address: string, path: string): { sent: Promise<void>; answer: Promise<{ status: number; body: unknown }> } {
  let sent!: () => void;
  const onWire = new Promise<void>((r) => (sent = r));
  const answer = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = request(`http://${address}${path}`, { agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(() => sent());
  });
  return { sent: onWire, answer };
}

t.test('a parked list answers when the agent shuts down, and events do not survive a restart', async (t) => {
  const c = await startTestConsul(t);
  const parked = send(c.address, '/v1/event/list?index=1&wait=5m');
  await parked.sent;
  await c.consul.status.leader(); // a later round trip: the agent has read the parked request by now
  await c.restart();
  t.strictSame(await parked.answer, { status: 200, body: [] }, 'the parked list answered instead of holding close()');
  await c.consul.event.fire('before-restart');
  await c.restart();
  t.strictSame(await c.consul.event.list(), [], 'the ring is in memory only, as in Consul');
});

t.test('consul client errors carry the status and text', async (t) => {
  const { consul } = await startTestConsul(t);
  const e = await consulError(consul.event.fire({ name: 'x', tag: 'v1' } as never));
  t.equal(e.statusCode, 500);
  t.match(e.message, /Cannot provide tag filter without service filter/);
});
