import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ERROR_CODES, WeftError, invalid } from '../../base/errors.js';

t.test('every error code is documented in docs/errors.md with its status', async (t) => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, { status }] of Object.entries(ERROR_CODES)) {
    t.match(doc, new RegExp(`\\| ${code} \\| ${status} \\|`), `${code} documented`);
  }
  const documented = [...doc.matchAll(/^\| (WEFT_ERR_[A-Z0-9_]+) \|/gm)].map((m) => m[1]);
  t.strictSame(documented.filter((c) => !(c! in ERROR_CODES)), [], 'no documented code is missing from base/errors.ts');
});

t.test('invalid() names the key and the value, and serialises to the API error shape', async (t) => {
  const err = invalid('WEFT_ERR_LABEL_INVALID', 'weft.port', '80a', 'must be an integer 1-65535');
  t.ok(err instanceof WeftError);
  t.equal(err.message, 'weft.port: must be an integer 1-65535 (got "80a")');
  t.equal(err.statusCode, 400);
  t.strictSame(JSON.parse(JSON.stringify(err)), {
    code: 'WEFT_ERR_LABEL_INVALID',
    message: 'weft.port: must be an integer 1-65535 (got "80a")',
    key: 'weft.port',
    value: '80a',
  });
});

t.test('every error code is raised somewhere in weft, and only listed codes are raised', async (t) => {
  const { productionSources } = await import('../structure/layering.js');
  const sources = productionSources(fileURLToPath(new URL('../..', import.meta.url)));
  const raised = new Set<string>();
  for (const [file, source] of sources) {
    if (file === 'base/errors.ts') continue;
    // Code, not comments: a code named only in a comment is raised nowhere.
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    for (const m of code.matchAll(/\bWEFT_ERR_[A-Z0-9_]*[A-Z0-9]\b/g)) raised.add(m[0]);
  }
  t.strictSame(
    Object.keys(ERROR_CODES).filter((code) => !raised.has(code)),
    [],
    'no code in base/errors.ts is dead',
  );
  t.strictSame(
    [...raised].filter((code) => !(code in ERROR_CODES)).sort(),
    [],
    'no code is raised that base/errors.ts does not list',
  );
});
