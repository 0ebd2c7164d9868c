import t from 'tap';
import { isWeftError } from '../../../base/errors.js';
import { IntentionTable, KvIntentions, parseIntentionDocument, parseIntentionKey } from '../../../proxy/inbound/intentions.js';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

const entry = (source: string, destination: string, action: string): { key: string; value: string } => ({
  key: `weft/intentions/${source}/${destination}`,
  value: JSON.stringify({ action }),
});

t.test('precedence: exact beats wildcard, and the destination counts more than the source (Consul)', async (t) => {
  // Each case: intentions present, the call, the expected action and which key decided.
  const cases: Array<{ name: string; entries: Array<[string, string, string]>; def: 'allow' | 'deny'; want: 'allow' | 'deny'; by?: string }> = [
    { name: 'nothing: default allow', entries: [], def: 'allow', want: 'allow' },
    { name: 'nothing: default deny', entries: [], def: 'deny', want: 'deny' },
    { name: 'exact deny', entries: [['web', 'api', 'deny']], def: 'allow', want: 'deny', by: 'web/api' },
    { name: 'exact allow under default deny', entries: [['web', 'api', 'allow']], def: 'deny', want: 'allow', by: 'web/api' },
    { name: 'exact beats */dst', entries: [['web', 'api', 'allow'], ['*', 'api', 'deny']], def: 'deny', want: 'allow', by: 'web/api' },
    { name: '*/dst beats src/*', entries: [['*', 'api', 'deny'], ['web', '*', 'allow']], def: 'allow', want: 'deny', by: '*/api' },
    { name: 'src/* beats */*', entries: [['web', '*', 'allow'], ['*', '*', 'deny']], def: 'deny', want: 'allow', by: 'web/*' },
    { name: '*/* beats the default', entries: [['*', '*', 'deny']], def: 'allow', want: 'deny', by: '*/*' },
    { name: 'other pairs do not match', entries: [['admin', 'api', 'deny'], ['web', 'db', 'deny']], def: 'allow', want: 'allow' },
  ];
  for (const c of cases) {
    const table = IntentionTable.fromEntries(
      c.entries.map(([s, d, a]) => entry(s, d, a)),
      { defaultAction: c.def },
    );
    const d = table.decide('web', 'api');
    t.equal(d.action, c.want, c.name);
    if (c.by !== undefined) t.match(d.reason, `weft/intentions/${c.by}`, `${c.name}: reason names the key`);
    else t.match(d.reason, /default action/, `${c.name}: reason says default`);
    if (d.action === 'deny') t.match(d.reason, /WEFT_ERR_INTENTION_DENIED/);
  }
});

t.test('decisions are shared objects (no allocation per request)', async (t) => {
  const table = IntentionTable.fromEntries([entry('*', 'api', 'deny')], { defaultAction: 'allow' });
  t.equal(table.decide('web', 'api'), table.decide('admin', 'api'));
  t.equal(table.decide('web', 'db'), table.decide('x', 'y'));
});

t.test('documents are validated with coded errors naming the key and field', async (t) => {
  t.strictSame(parseIntentionDocument('k', '{"action":"allow"}'), { action: 'allow' });
  t.strictSame(parseIntentionDocument('k', '{"action":"deny","description":"no"}'), { action: 'deny', description: 'no' });
  const bad: Array<[string | null, RegExp]> = [
    ['nope', /not JSON/],
    [null, /not JSON/],
    ['[]', /JSON object/],
    ['{}', /k#\/action: must be "allow" or "deny"/],
    ['{"action":"ALLOW"}', /must be "allow" or "deny" \(got "ALLOW"\)/],
    ['{"action":"allow","Action":"deny"}', /k#\/Action: unknown field/],
    ['{"action":"allow","description":7}', /k#\/description/],
  ];
  for (const [raw, msg] of bad) {
    const err = caught(() => parseIntentionDocument('k', raw));
    t.ok(isWeftError(err, 'WEFT_ERR_INTENTION_INVALID'), `${raw}: coded`);
    t.match((err as Error).message, msg, String(raw));
  }
});

t.test('keys name exactly a source and a destination, each a service name or *', async (t) => {
  t.strictSame(parseIntentionKey('weft/intentions/web/api'), { source: 'web', destination: 'api' });
  t.strictSame(parseIntentionKey('weft/intentions/*/api'), { source: '*', destination: 'api' });
  for (const key of ['weft/intentions/web', 'weft/intentions/a/b/c', 'weft/intentions/we b/api', 'weft/intentions/web*/api', 'weft/other/web/api']) {
    t.ok(isWeftError(caught(() => parseIntentionKey(key)), 'WEFT_ERR_INTENTION_INVALID'), key);
  }
});

t.test('fail closed: an invalid document denies its pair even under default allow; a bad key is only reported', async (t) => {
  const table = IntentionTable.fromEntries(
    [
      { key: 'weft/intentions/web/api', value: '{"action":"alow"}' },
      { key: 'weft/intentions/web', value: '{"action":"deny"}' },
      { key: 'weft/intentions/web/', value: null },
    ],
    { defaultAction: 'allow' },
  );
  const d = table.decide('web', 'api');
  t.equal(d.action, 'deny');
  t.match(d.reason, /weft\/intentions\/web\/api is invalid/);
  t.equal(table.decide('web', 'db').action, 'allow');
  t.equal(table.errors.length, 2, 'the bad document and the bad key; the folder placeholder is skipped');
  t.equal(table.size, 1);
});

t.test('KvIntentions denies until loaded, then follows updates', async (t) => {
  const live = new KvIntentions({ defaultAction: 'allow' });
  t.equal(live.decide('web', 'api').action, 'deny');
  t.match(live.decide('web', 'api').reason, /not loaded/);
  t.strictSame(live.update([]), []);
  t.equal(live.decide('web', 'api').action, 'allow');
  live.update([entry('web', 'api', 'deny')]);
  t.equal(live.decide('web', 'api').action, 'deny');
});
