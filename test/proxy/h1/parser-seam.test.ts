/**
 * The start-up self-check of the parser seam (proxy/h1/llhttp.ts): on this
 * Node it passes; on a Node whose internals moved it names what moved,
 * with WEFT_ERR_PROXY_PARSER_UNAVAILABLE.
 *
 * The broken bindings here are fakes, built from the real one with one
 * thing removed, renumbered or reordered: Node removing or changing its
 * internals cannot be produced for real on the Node the suite runs on, and
 * the check is a pure function of the binding it is handed for this reason.
 */
import { createRequire } from 'node:module';
import t from 'tap';
import { isWeftError, WeftError } from '../../../base/errors.js';
import { checkParserInternals, type ParserInternals, parserInternalsProblems, verifyParserInternals } from '../../../proxy/h1/llhttp.js';

const real = createRequire(import.meta.url)('node:_http_common') as { HTTPParser: new () => object; methods: string[] };
type Ctor = (new () => object) & Record<string, unknown>;

/** A subclass of the real HTTPParser with some statics replaced (own properties shadow the inherited ones). */
function withStatics(statics: Record<string, unknown>): ParserInternals {
  const Fake = class extends real.HTTPParser {} as unknown as Ctor;
  for (const [k, v] of Object.entries(statics)) Object.defineProperty(Fake, k, { value: v });
  return { HTTPParser: Fake, methods: real.methods };
}

/** A subclass of the real HTTPParser with some prototype methods replaced. */
function withMethods(methods: Record<string, unknown>): ParserInternals {
  const Fake = class extends real.HTTPParser {} as unknown as Ctor & { prototype: Record<string, unknown> };
  for (const [k, v] of Object.entries(methods)) Object.defineProperty(Fake.prototype, k, { value: v });
  return { HTTPParser: Fake, methods: real.methods };
}

/** The check's verdict on `internals`: the coded error it throws (never another kind), or undefined. */
function verdict(internals: ParserInternals | undefined): WeftError | undefined {
  try {
    verifyParserInternals(internals);
    return undefined;
  } catch (err) {
    if (!(err instanceof WeftError)) throw err;
    return err;
  }
}

t.test("this Node's parser passes: the proxy starts", async (t) => {
  t.strictSame(parserInternalsProblems(real), []);
  t.doesNotThrow(() => checkParserInternals());
  t.doesNotThrow(() => checkParserInternals(), 'a second call is a no-op');
});

t.test('a missing module or class is refused with the code, not a TypeError', async (t) => {
  for (const [name, internals, expected] of [
    ['no module', undefined, /node:_http_common exports nothing/],
    ['no HTTPParser', { methods: real.methods }, /no HTTPParser class/],
    ['HTTPParser not a class', { HTTPParser: {}, methods: real.methods }, /no HTTPParser class/],
  ] as const) {
    const err = verdict(internals);
    t.ok(isWeftError(err, 'WEFT_ERR_PROXY_PARSER_UNAVAILABLE'), `${name}: coded`);
    t.equal(err?.statusCode, 500);
    t.match(err?.message, expected, `${name}: says what is missing`);
    t.match(err?.message, /The parser seam/, `${name}: points at the docs`);
  }
});

t.test('a missing or renamed callback index is named', async (t) => {
  for (const name of ['kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute', 'kOnMessageBegin', 'REQUEST', 'kLenientNone']) {
    const err = verdict(withStatics({ [name]: undefined }));
    t.equal(err?.code, 'WEFT_ERR_PROXY_PARSER_UNAVAILABLE', `${name} removed`);
    t.match(err?.message, `HTTPParser.${name} is not an index (got undefined)`);
    t.strictSame(err?.key, 'node:_http_common');
  }
  const clash = verdict(withStatics({ kOnBody: real.HTTPParser['kOnHeaders' as never] }));
  t.match(clash?.message, /callback indices are not distinct/, 'two callbacks on one slot');
});

t.test('a missing parser method (consume, unconsume, getCurrentBuffer, ...) is named, all at once', async (t) => {
  const err = verdict(withMethods({ consume: undefined, getCurrentBuffer: 'not a function' }));
  t.equal(err?.code, 'WEFT_ERR_PROXY_PARSER_UNAVAILABLE');
  t.strictSame(err?.value, ['HTTPParser.prototype.consume is not a function', 'HTTPParser.prototype.getCurrentBuffer is not a function'], 'every problem listed, nothing else');
  for (const m of ['initialize', 'execute', 'finish', 'close', 'unconsume']) {
    t.match(verdict(withMethods({ [m]: undefined }))?.message, `HTTPParser.prototype.${m} is not a function`, `${m} removed`);
  }
});

t.test('a changed method table is refused', async (t) => {
  t.match(verdict({ HTTPParser: real.HTTPParser, methods: 'GET HEAD' })?.message, /methods is not a list/);
  t.match(verdict({ HTTPParser: real.HTTPParser, methods: real.methods.filter((m) => m !== 'CONNECT') })?.message, /methods lacks CONNECT/);
  // Same names, another order: the index llhttp reports would name the wrong method.
  t.match(verdict({ HTTPParser: real.HTTPParser, methods: [...real.methods].reverse() })?.message, /expected .*"POST".* got .*"(?!POST)/);
});

t.test('callbacks renumbered or with their arguments reordered pass a shape check but not the probe', async (t) => {
  const P = real.HTTPParser as unknown as Record<string, number>;
  // The class says kOnBody is where kOnHeadersComplete is and the other way round: the shape is fine, the meaning is not.
  const swapped = verdict(withStatics({ kOnBody: P['kOnHeadersComplete'], kOnHeadersComplete: P['kOnBody'] }));
  t.equal(swapped?.code, 'WEFT_ERR_PROXY_PARSER_UNAVAILABLE', 'swapped indices');
  t.match(swapped?.message, /kOnHeadersComplete on a small request/);

  // A binding that passes kOnHeadersComplete's arguments in another order (url before method).
  const slot = P['kOnHeadersComplete']!;
  const Reordered = class extends real.HTTPParser {} as unknown as Ctor & { prototype: object };
  Object.defineProperty(Reordered.prototype, slot, {
    set(this: Record<string, unknown>, fn: (...a: unknown[]) => unknown) {
      this['_wrapped'] = (maj: unknown, min: unknown, h: unknown, method: unknown, url: unknown, ...rest: unknown[]) => fn(maj, min, h, url, method, ...rest);
    },
    get(this: Record<string, unknown>) {
      return this['_wrapped'];
    },
  });
  const reordered = verdict({ HTTPParser: Reordered, methods: real.methods });
  t.equal(reordered?.code, 'WEFT_ERR_PROXY_PARSER_UNAVAILABLE', 'reordered arguments');
  t.match(reordered?.message, /kOnHeadersComplete on a small request/);

  // A binding whose execute() no longer reports where an Upgrade head ends (the tunnel's first bytes would be lost).
  const WholeChunk = class extends real.HTTPParser {} as unknown as Ctor & { prototype: Record<string, unknown> };
  const execute = (real.HTTPParser.prototype as { execute: (b: Buffer) => unknown }).execute;
  WholeChunk.prototype['execute'] = function (this: object, b: Buffer) {
    const ret = execute.call(this, b);
    return typeof ret === 'number' ? b.length : ret;
  };
  t.match(verdict({ HTTPParser: WholeChunk, methods: real.methods })?.message, /an Upgrade head/);

  // A binding that throws while parsing: reported, not thrown through.
  const Throwing = class extends real.HTTPParser {} as unknown as Ctor & { prototype: Record<string, unknown> };
  Throwing.prototype['execute'] = () => {
    throw new TypeError('boom');
  };
  const thrown = verdict({ HTTPParser: Throwing, methods: real.methods });
  t.equal(thrown?.code, 'WEFT_ERR_PROXY_PARSER_UNAVAILABLE');
  t.match(thrown?.message, /parsing a probe head threw: boom/);
});
