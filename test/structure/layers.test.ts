import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { importCycles, importsOf, MODULES, productionSources, ruleBroken, SURFACES, violations } from './layering.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('the tree keeps its three floors: every import runs down, modules meet at their surfaces', async (t) => {
  const found = violations(productionSources(root));
  t.strictSame(
    found.map((v) => `${v.file} imports '${v.specifier}': ${v.rule}`),
    [],
    'no import breaks the layering',
  );
});

t.test('every module has its public surface', async (t) => {
  for (const m of MODULES) t.ok(existsSync(`${root}/${m}/index.ts`), `${m}/index.ts exists`);
  for (const s of SURFACES) t.ok(existsSync(`${root}/${s}`), `${s} exists`);
});

t.test('the check reads every form of import', async (t) => {
  const src = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "import * as c from './c.js';",
    "import './side-effect.js';",
    "export { d } from './d.js';",
    "export * from './e.js';",
    "const { f } = await import('./f.js');",
    'import {',
    '  g,',
    '  type H,',
    "} from './g.js';",
    "// import { no } from './commented.js';",
    "/* import { no } from './block.js'; */",
  ].join('\n');
  t.strictSame(importsOf(src), ['./a.js', '../b.js', './c.js', './side-effect.js', './d.js', './e.js', './f.js', './g.js']);
});

t.test('the check catches each kind of broken import', async (t) => {
  const cases: Array<[file: string, specifier: string, broken: boolean]> = [
    ['base/errors.ts', './log.js', false],
    ['base/errors.ts', '../proxy/index.js', true],
    ['base/contracts/node.ts', '../../src/config/load.js', true],
    ['proxy/outbound/relay.ts', '../../base/errors.js', false],
    ['proxy/outbound/relay.ts', '../balance/p2c.js', false],
    ['proxy/outbound/relay.ts', '../inbound/handler.js', true],
    ['proxy/inbound/handler.ts', '../outbound/relay.js', true],
    ['agent/identities.ts', '../certs/index.js', false],
    ['agent/identities.ts', '../certs/ca.js', true],
    ['agent/identities.ts', '../src/config/load.js', true],
    ['scheduler/spec/semantic.ts', '../../discovery/watch.js', true],
    ['src/wiring/proxy-process.ts', '../../discovery/index.js', false],
    ['src/wiring/proxy-process.ts', '../../discovery/watch.js', true],
    ['src/cli/dev-consul.ts', '../../discovery/dev-agent/index.js', false],
    ['src/cli/dev-consul.ts', '../../discovery/dev-agent/server.js', true],
    ['discovery/kv.ts', '../test/helpers/ports.js', true],
    ['proxy/h1/llhttp.ts', 'node:_http_common', false],
    ['proxy/h1/server.ts', 'node:_http_common', true],
    ['proxy/h1/server.ts', '_http_common', true],
    ['proxy/h1/server.ts', 'node:net', false],
  ];
  for (const [file, specifier, broken] of cases) {
    t.equal(ruleBroken(file, specifier) !== undefined, broken, `${file} -> ${specifier}: ${broken ? 'refused' : 'allowed'}`);
  }
});

t.test('no two production files import each other in a loop', async (t) => {
  t.strictSame(importCycles(productionSources(root)), [], 'no import loop');
});

t.test('the loop check finds loops of value imports and ignores type-only ones', async (t) => {
  const tree = (a: string, b: string) =>
    new Map([
      ['base/a.ts', a],
      ['base/b.ts', b],
      ['base/c.ts', "import { x } from './a.js';"],
    ]);
  t.strictSame(importCycles(tree("import { b } from './b.js';", "import { a } from './a.js';")), [['base/a.ts', 'base/b.ts']]);
  t.strictSame(importCycles(tree("import { b } from './b.js';", "import type { A } from './a.js';")), []);
  t.strictSame(importCycles(tree("import { b } from './b.js';", "import { type A } from './a.js';")), []);
  t.strictSame(importCycles(tree("export { b } from './b.js';", "export * from './a.js';")), [['base/a.ts', 'base/b.ts']]);
});
