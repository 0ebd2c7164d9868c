/**
 * docs/configuration.md is the configuration reference: every key of the
 * schema (src/config/schema.ts) has its row, with its default, and no row
 * names a key the schema does not have.
 */
import { readFileSync } from 'node:fs';
import type { TSchema } from '@sinclair/typebox';
import t from 'tap';
import { ConfigSchema } from '../../../src/config/schema.js';

interface Leaf {
  key: string;
  default: unknown;
}

/** Every leaf key of an object schema, dotted, with its default. */
function leaves(schema: TSchema, prefix = ''): Leaf[] {
  const props = (schema as { type?: string; properties?: Record<string, TSchema> }).properties;
  if ((schema as { type?: string }).type !== 'object' || props === undefined || Object.keys(props).length === 0) {
    return [{ key: prefix, default: (schema as { default?: unknown }).default }];
  }
  return Object.entries(props).flatMap(([name, s]) => leaves(s, prefix === '' ? name : `${prefix}.${name}`));
}

/** Defaults computed when the schema loads (the machine's host name): the row says so in words. */
const COMPUTED = new Set(['nodeName']);

const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
const rows = new Map<string, string>();
for (const line of doc.split('\n')) {
  const m = /^\| `([A-Za-z0-9_.<>*-]+)` \|(.*)$/.exec(line);
  if (m !== null) rows.set(m[1]!, m[2]!);
}

t.test('every configuration key has its row in docs/configuration.md, with its default', async (t) => {
  const keys = leaves(ConfigSchema);
  t.ok(keys.length > 40, `${keys.length} keys in the schema`);
  // A map (agent.attributes) has its row as `agent.attributes.<k>`.
  const hasRow = (key: string): boolean => rows.has(key) || [...rows.keys()].some((r) => r.startsWith(`${key}.<`));
  const missing = keys.filter((k) => !hasRow(k.key)).map((k) => k.key);
  t.strictSame(missing, [], 'no key without a row');
  for (const k of keys) {
    const row = rows.get(k.key);
    if (row === undefined || k.default === undefined || typeof k.default === 'object' || COMPUTED.has(k.key)) continue;
    t.ok(row.includes(`\`${String(k.default)}\``) || row.includes(String(k.default)), `${k.key}: the row shows the default ${String(k.default)}`);
  }
});

t.test('no row names a key the schema does not have', async (t) => {
  const known = new Set(leaves(ConfigSchema).map((k) => k.key));
  const prefixes = new Set([...known].flatMap((k) => k.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))));
  t.strictSame(
    [...rows.keys()].filter((k) => !known.has(k) && !prefixes.has(k) && !k.includes('<')),
    [],
    'every row is a schema key',
  );
});
