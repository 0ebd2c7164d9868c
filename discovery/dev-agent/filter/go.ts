/**
 * The few Go standard-library behaviours a filter's error messages and
 * values depend on, written for the dev agent: strconv's quoting (every
 * error quotes with %q), unquoting of "..." literals, and ParseInt/ParseBool
 * as go-bexpr coerces values for int and bool fields.
 */

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

/** Runes Go's unicode.IsPrint rejects (controls, format, separators other than ' ', unassigned, surrogates). */
const NOT_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}\p{Zs}]/u;

/** strconv.Quote: what `%q` prints. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const simple = SIMPLE_ESCAPES[ch];
    if (simple !== undefined) out += simple;
    else if (ch === ' ' || !NOT_PRINTABLE.test(ch)) out += ch;
    else {
      const cp = ch.codePointAt(0)!;
      if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
  }
  return `${out}"`;
}

const UNESCAPE: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };

/**
 * strconv.Unquote of a double-quoted literal (quotes included): Go's escape
 * sequences, `\x` and octal escapes as raw bytes. Undefined where Go answers
 * "invalid syntax" (a newline, `\'`, a bad or out-of-range escape).
 */
export function goUnquote(literal: string): string | undefined {
  if (literal.length < 2 || !literal.startsWith('"') || !literal.endsWith('"')) return undefined;
  const body = literal.slice(1, -1);
  if (body.includes('\n')) return undefined;
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    if (c === '"') return undefined;
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...encoder.encode(ch));
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    const simple = UNESCAPE[e];
    if (simple !== undefined) {
      bytes.push(simple);
      i += 2;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i + 2, i + 2 + n);
      if (hex.length !== n || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
      const v = Number.parseInt(hex, 16);
      if (e === 'x') bytes.push(v);
      else if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      else bytes.push(...encoder.encode(String.fromCodePoint(v)));
      i += 2 + n;
    } else if (e >= '0' && e <= '7') {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct)) return undefined;
      const v = Number.parseInt(oct, 8);
      if (v > 255) return undefined;
      bytes.push(v);
      i += 4;
    } else {
      return undefined;
    }
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

/** An int64 as strconv.ParseInt(s, 0, 64) reads it, or its error text. */
export function parseGoInt(s: string): { value: bigint } | { error: string } {
  const fail = (why: string) => ({ error: `strconv.ParseInt: parsing ${goQuote(s)}: ${why}` });
  if (s === '') return fail('invalid syntax');
  let rest = s;
  let negative = false;
  if (rest[0] === '+' || rest[0] === '-') {
    negative = rest[0] === '-';
    rest = rest.slice(1);
  }
  const magnitude = parseGoUint(rest);
  if (magnitude === 'syntax') return fail('invalid syntax');
  const limit = 1n << 63n;
  if (magnitude === 'range' || (!negative && magnitude >= limit) || (negative && magnitude > limit)) return fail('value out of range');
  return { value: negative ? -magnitude : magnitude };
}

/** strconv.ParseUint(s, 0, 64) without the sign: base prefixes, a leading 0 for octal, `_` separators. */
function parseGoUint(s: string): bigint | 'syntax' | 'range' {
  if (s === '') return 'syntax';
  let base = 10n;
  let digits = s;
  if (s[0] === '0') {
    const p = s[1]?.toLowerCase();
    if (s.length >= 3 && (p === 'b' || p === 'o' || p === 'x')) {
      base = p === 'b' ? 2n : p === 'o' ? 8n : 16n;
      digits = s.slice(2);
    } else {
      base = 8n;
      digits = s.slice(1);
    }
  }
  let n = 0n;
  let sawUnderscore = false;
  for (const ch of digits) {
    if (ch === '_') {
      sawUnderscore = true;
      continue;
    }
    const d = digitValue(ch);
    if (d === undefined || d >= base) return 'syntax';
    n = n * base + d;
  }
  if (sawUnderscore && !underscoresSeparateDigits(s)) return 'syntax';
  return n >= 1n << 64n ? 'range' : n;
}

function digitValue(ch: string): bigint | undefined {
  const c = ch.toLowerCase();
  if (c >= '0' && c <= '9') return BigInt(c.charCodeAt(0) - 48);
  if (c >= 'a' && c <= 'z') return BigInt(c.charCodeAt(0) - 87);
  return undefined;
}

/** Go's rule for `_` in integer literals: only between digits, or between a base prefix and a digit. */
function underscoresSeparateDigits(s: string): boolean {
  let i = 0;
  let last: 'start' | 'digit' | 'underscore' | 'other' = 'start';
  const prefix = s[1]?.toLowerCase();
  const hex = s[0] === '0' && prefix === 'x';
  if (s.length >= 2 && s[0] === '0' && (prefix === 'b' || prefix === 'o' || prefix === 'x')) {
    i = 2;
    last = 'digit';
  }
  for (; i < s.length; i++) {
    const c = s[i]!.toLowerCase();
    if ((c >= '0' && c <= '9') || (hex && c >= 'a' && c <= 'f')) {
      last = 'digit';
    } else if (c === '_') {
      if (last !== 'digit') return false;
      last = 'underscore';
    } else {
      if (last === 'underscore') return false;
      last = 'other';
    }
  }
  return last !== 'underscore';
}

/** strconv.ParseBool, or its error text. */
export function parseGoBool(s: string): { value: boolean } | { error: string } {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return { value: true };
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return { value: false };
  return { error: `strconv.ParseBool: parsing ${goQuote(s)}: invalid syntax` };
}
