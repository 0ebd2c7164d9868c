import { readFileSync } from 'node:fs';
const rss = () => { gc(); gc(); return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status','utf8'))[1])/1024; };
const skip = process.argv[2]; const skips = new Set((skip ?? "").split(","));
const all = {
  commander: async () => { const { Command } = await import('commander'); new Command('x').option('--a <b>').parse(['node','x','--a','1']); },
  pino: async () => { const { pino } = await import('pino'); pino({ level: 'warn', redact: { paths: ['a.token','token'], censor: 'x' } }); },
  typebox: async () => { await import('@sinclair/typebox'); },
  typeboxValue: async () => { const { Value } = await import('@sinclair/typebox/value'); const { Type } = await import('@sinclair/typebox'); Value.Errors(Type.Object({a: Type.String()}), {a:'x'}).First(); },
  ajv: async () => { const { Ajv } = await import('ajv'); const s = JSON.parse(readFileSync('/tmp/rss/schema.json','utf8')); const v = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false }).compile(s); v({}); },
  yaml: async () => { const { parse } = await import('yaml'); parse('a: 1\nb:\n  c: x\n'); },
  consul: async () => { await import('consul'); },
  prom: async () => { const { Registry, collectDefaultMetrics } = await import('prom-client'); collectDefaultMetrics({ register: new Registry() }); },
  node: async () => { await import('node:tls'); await import('node:http'); await import('node:net'); },
};
for (const [k, f] of Object.entries(all)) if (!skips.has(k)) await f();
await new Promise(r => setTimeout(r, 200));
console.log(`${(skip ?? 'none').padEnd(14)} ${rss().toFixed(1)}`);
