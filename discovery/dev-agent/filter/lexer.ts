/**
 * Splits a filter expression into tokens. The language is go-bexpr's:
 * identifiers `[a-zA-Z][a-zA-Z0-9_]*` (keywords such as `and` or `matches`
 * are identifiers the parser recognises), numbers `-?(0|[1-9][0-9]*)(.[0-9]+)?`,
 * strings in double quotes (Go escapes, no escaped quote: the first `"`
 * ends it) or backquotes (raw), and `( ) . [ ] == !=`. Whitespace is
 * `[ \t\r\n]`; the parser needs to know where it was, because go-bexpr
 * requires it around keywords (`a and b`, never `a andb`), so each token
 * records whether whitespace came before it.
 *
 * Malformed literals (an unterminated string, a number run into other text,
 * a string Go cannot unquote) still become tokens that carry their problem:
 * go-bexpr reports it only when its grammar tries to read a value there.
 */
import { goUnquote } from './go.js';

/** What a token is. */
export type TokenKind = 'ident' | 'number' | 'string' | 'punct' | 'other' | 'eof';

/** One token; offsets are indexes into the expression string. */
export interface Token {
  readonly kind: TokenKind;
  /** The source text of the token. */
  readonly text: string;
  readonly start: number;
  readonly end: number;
  /** Whitespace came right before this token. */
  readonly spaceBefore: boolean;
  /** A string's value, once unquoted. */
  readonly value?: string;
  /** Why the literal is malformed, and where go-bexpr reports it. */
  readonly problem?: { readonly message: string; readonly at: number };
}

const WHITESPACE = new Set([' ', '\t', '\r', '\n']);

/** Tokenises `input`; always ends with one `eof` token. Never throws. */
export function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (true) {
    const wsStart = i;
    while (i < input.length && WHITESPACE.has(input[i]!)) i++;
    const spaceBefore = i > wsStart;
    if (i >= input.length) {
      tokens.push({ kind: 'eof', text: '', start: i, end: i, spaceBefore });
      return tokens;
    }
    const start = i;
    const c = input[i]!;
    const push = (kind: TokenKind, end: number, extra: Partial<Token> = {}): void => {
      tokens.push({ kind, text: input.slice(start, end), start, end, spaceBefore, ...extra });
      i = end;
    };
    if (isLetter(c)) {
      let j = i + 1;
      while (j < input.length && isIdentChar(input[j]!)) j++;
      push('ident', j);
    } else if (isDigit(c) || (c === '-' && isDigit(input[i + 1]))) {
      push('number', ...lexNumber(input, i));
    } else if (c === '"' || c === '`') {
      const close = input.indexOf(c, i + 1);
      if (close === -1) {
        push('string', input.length, { problem: { message: 'Unterminated string literal', at: input.length } });
      } else {
        const literal = input.slice(i, close + 1);
        const value = c === '`' ? literal.slice(1, -1).replaceAll('\r', '') : goUnquote(literal);
        push('string', close + 1, value === undefined ? { problem: { message: 'invalid syntax', at: start } } : { value });
      }
    } else if ((c === '=' || c === '!') && input[i + 1] === '=') {
      push('punct', i + 2);
    } else if (c === '(' || c === ')' || c === '.' || c === '[' || c === ']') {
      push('punct', i + 1);
    } else {
      push('other', i + String.fromCodePoint(input.codePointAt(i)!).length);
    }
  }
}

/** A number's end and, when it runs into anything but whitespace, `)` or the end, its problem. */
function lexNumber(input: string, start: number): [number, Partial<Token>] {
  let j = start;
  if (input[j] === '-') j++;
  if (input[j] === '0') j++;
  else while (isDigit(input[j])) j++;
  if (input[j] === '.' && isDigit(input[j + 1])) {
    j++;
    while (isDigit(input[j])) j++;
  }
  const next = input[j];
  const clean = next === undefined || WHITESPACE.has(next) || next === ')';
  return [j, clean ? {} : { problem: { message: 'Invalid number literal', at: j } }];
}

function isLetter(c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isIdentChar(c: string): boolean {
  return isLetter(c) || isDigit(c) || c === '_';
}
