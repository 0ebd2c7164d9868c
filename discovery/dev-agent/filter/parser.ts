/**
 * A recursive-descent parser for Consul's filter language (go-bexpr 0.1.2,
 * the version Consul builds with). The grammar, lowest precedence first:
 *
 *   Input        <- _? Or _? EOF
 *   Or           <- And (_ "or" _ And)*                      (right-nested in go-bexpr)
 *   And          <- Not (_ "and" _ Not)*
 *   Not          <- "not" _ Not / Group
 *   Group        <- "(" _? Or _? ")" / Match
 *   Match        <- Selector Op Value                         Op: == != contains, not contains, matches, not matches
 *                 / Selector _ "is" _ ("not" _)? "empty"
 *                 / Value _ ("not" _)? "in" _ Selector
 *   Selector     <- Ident ("." Ident / "[" _? String _? "]")*
 *   Value        <- Selector (its parts joined by ".") / Number / String
 *
 * `==` and `!=` need no whitespace around them; every keyword does. The
 * alternatives are tried in this order with backtracking, as the PEG does,
 * so `not == 1` is a match on a field named `not`.
 *
 * Errors read like go-bexpr's (pigeon's): `line:col (offset): ` then either a
 * rule's own error (`rule "number": Invalid number literal`) or, when nothing
 * matches, what the parser expected at the farthest point it reached
 * (`no match found, expected: "!=", "==" or [ \t\r\n]`).
 */
import type { Expression, MatchOperator } from './ast.js';
import { goQuote } from './go.js';
import { type Token, tokenize } from './lexer.js';

/** A bad expression, with go-bexpr's message (without Consul's "Failed to create ..." prefix). */
export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

/** Deeper nesting of parentheses and `not` is refused (go-bexpr has no limit; a JS stack does). */
export const MAX_NESTING = 100;

const WS = '[ \\t\\r\\n]';
const IDENT_START = '[a-zA-Z]';
const IDENT_CONTINUE = '[a-zA-Z0-9_]';

/** Parses a filter expression into its tree; throws FilterError. */
export function parseFilter(input: string): Expression {
  return new Parser(input).parseInput();
}

class Parser {
  private readonly tokens: Token[];
  private p = 0;
  private depth = 0;
  /** The farthest offset a match failed at and what was expected there (pigeon's error report). */
  private failPos = -1;
  private readonly expected = new Set<string>();
  /** Or-expressions already parsed, by token index: a group is tried twice, so without this `((((x` is exponential. */
  private readonly memo = new Map<number, { node: Expression; end: number } | null>();

  constructor(private readonly input: string) {
    this.tokens = tokenize(input);
  }

  parseInput(): Expression {
    const expr = this.orExpression();
    if (expr !== undefined && this.peek().kind === 'eof') return expr;
    if (expr !== undefined) this.expect(this.peek().start, 'EOF');
    throw this.noMatch();
  }

  private orExpression(): Expression | undefined {
    const start = this.p;
    const known = this.memo.get(start);
    if (known !== undefined) {
      if (known === null) return undefined;
      this.p = known.end;
      return known.node;
    }
    const node = this.chain('or', () => this.andExpression());
    this.memo.set(start, node === undefined ? null : { node, end: this.p });
    return node;
  }

  private andExpression(): Expression | undefined {
    return this.chain('and', () => this.notExpression());
  }

  /** `x (_ kw _ x)*`; a keyword not followed by a whole operand is left for the caller to trip on. */
  private chain(kw: 'and' | 'or', operand: () => Expression | undefined): Expression | undefined {
    const first = operand();
    if (first === undefined) return undefined;
    const operands = [first];
    while (true) {
      const save = this.p;
      if (!this.keyword(kw, true, true)) break;
      const next = operand();
      if (next === undefined) {
        this.p = save;
        break;
      }
      operands.push(next);
    }
    if (operands.length === 1) return first;
    // `a and (b and c)` is the same list as `a and b and c`.
    return { kind: kw, operands: operands.flatMap((o) => (o.kind === kw ? o.operands : [o])) };
  }

  private notExpression(): Expression | undefined {
    const save = this.p;
    if (this.keyword('not', false, true)) {
      const operand = this.nested(() => this.notExpression());
      if (operand !== undefined) return operand.kind === 'not' ? operand.operand : { kind: 'not', operand };
      this.p = save;
    }
    return this.group();
  }

  private group(): Expression | undefined {
    const save = this.p;
    if (this.punct('(')) {
      const inner = this.nested(() => this.orExpression());
      if (inner !== undefined && this.punct(')')) return inner;
    }
    this.p = save;
    const match = this.matchExpression();
    if (match !== undefined) return match;
    this.p = save;
    if (this.peek().text === '(' && this.peek().kind === 'punct') {
      this.p++;
      if (this.orExpression() !== undefined) this.ruleError('grouping', 'Unmatched parentheses', this.peek().start);
    }
    this.p = save;
    return undefined;
  }

  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_NESTING) {
      throw new FilterError(`${this.position(this.peek().start)}: expression nested more than ${MAX_NESTING} levels deep`);
    }
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private matchExpression(): Expression | undefined {
    const save = this.p;
    // Selector (== | != | contains | not contains | matches | not matches) Value
    let selector = this.selector();
    if (selector !== undefined) {
      const operator = this.selectorValueOperator();
      if (operator !== undefined) {
        const value = this.value();
        if (value !== undefined) return { kind: 'match', selector, operator, value };
      }
    }
    // Selector is [not] empty
    this.p = save;
    selector = this.selector();
    if (selector !== undefined) {
      const operator = this.emptinessOperator();
      if (operator !== undefined) return { kind: 'match', selector, operator };
    }
    // Value [not] in Selector
    this.p = save;
    const value = this.value();
    if (value !== undefined) {
      const operator = this.inOperator();
      if (operator !== undefined) {
        const target = this.selector();
        if (target !== undefined) return { kind: 'match', selector: target, operator, value };
        this.ruleError('match', 'Invalid selector', this.peek().start);
      }
    }
    this.p = save;
    return undefined;
  }

  private selectorValueOperator(): MatchOperator | undefined {
    if (this.punct('==')) return 'Equal';
    if (this.punct('!=')) return 'Not Equal';
    return this.words([
      [['contains'], 'In'],
      [['not', 'contains'], 'Not In'],
      [['matches'], 'Matches'],
      [['not', 'matches'], 'Not Matches'],
    ]);
  }

  private emptinessOperator(): MatchOperator | undefined {
    const save = this.p;
    if (this.keyword('is', true, true)) {
      if (this.keyword('empty', true, false)) return 'Is Empty';
      if (this.keyword('not', true, true) && this.keyword('empty', true, false)) return 'Is Not Empty';
    }
    this.p = save;
    return undefined;
  }

  private inOperator(): MatchOperator | undefined {
    return this.words([
      [['in'], 'In'],
      [['not', 'in'], 'Not In'],
    ]);
  }

  /** The first keyword sequence that matches (each keyword with whitespace on both sides). */
  private words(options: ReadonlyArray<readonly [readonly string[], MatchOperator]>): MatchOperator | undefined {
    const save = this.p;
    for (const [words, operator] of options) {
      if (words.every((w) => this.keyword(w, true, true))) return operator;
      this.p = save;
    }
    return undefined;
  }

  /** Ident ("." Ident / "[" String "]")*. */
  private selector(): string[] | undefined {
    const first = this.peek();
    if (first.kind !== 'ident') {
      this.expect(first.start, IDENT_START);
      return undefined;
    }
    this.p++;
    const parts = [first.text];
    let lastWasIdent = true;
    while (true) {
      const t = this.peek();
      const end = this.tokens[this.p - 1]!.end;
      // What else the selector could have continued with, where it stopped.
      this.expect(end, '"."', '"["', ...(lastWasIdent ? [IDENT_CONTINUE] : []));
      if (t.spaceBefore || t.kind !== 'punct') break;
      if (t.text === '.') {
        const ident = this.tokens[this.p + 1]!;
        if (ident.kind !== 'ident' || ident.spaceBefore) {
          this.expect(t.end, IDENT_START);
          break;
        }
        parts.push(ident.text);
        this.p += 2;
        lastWasIdent = true;
      } else if (t.text === '[') {
        parts.push(this.index());
        lastWasIdent = false;
      } else {
        break;
      }
    }
    return parts;
  }

  /** `[ "key" ]` at the current token; malformed ones are errors of the index rule. */
  private index(): string {
    this.p++;
    const lit = this.peek();
    if (lit.kind !== 'string') this.ruleError('index', 'Invalid index', lit.start);
    const key = this.stringValue(lit);
    this.p++;
    const close = this.peek();
    if (close.kind !== 'punct' || close.text !== ']') this.ruleError('index', 'Unclosed index expression', close.start);
    this.p++;
    return key;
  }

  /** A selector (as its dotted text), a number or a string; undefined when none starts here. */
  private value(): string | undefined {
    const t = this.peek();
    if (t.kind === 'ident') return this.selector()!.join('.');
    this.expect(t.start, IDENT_START, '"-"', '"0"', '[1-9]', '"\\""', '"`"');
    if (t.kind === 'number') {
      if (t.problem !== undefined) this.ruleError('number', t.problem.message, t.problem.at);
      this.p++;
      const fraction = t.text.includes('.');
      const intPart = t.text.replace(/^-/, '').split('.')[0]!;
      this.expect(t.end, ...(fraction || intPart !== '0' ? ['[0-9]'] : []), ...(fraction ? [] : ['"."']));
      // go-bexpr's look-ahead after a number: whitespace, the end, or ")".
      const next = this.peek();
      if (!next.spaceBefore) this.expect(t.end, WS, ...(next.text === ')' ? ['EOF'] : []));
      return t.text;
    }
    if (t.kind === 'string') {
      const v = this.stringValue(t);
      this.p++;
      return v;
    }
    return undefined;
  }

  private stringValue(t: Token): string {
    if (t.problem !== undefined) this.ruleError('string', t.problem.message, t.problem.at);
    return t.value!;
  }

  /**
   * Matches keyword `kw` at the current token. `before`/`after`: whitespace
   * is required before/after it. Records what was expected on failure.
   */
  private keyword(kw: string, before: boolean, after: boolean): boolean {
    const t = this.peek();
    if (before && !t.spaceBefore) {
      this.expect(t.start, WS);
      return false;
    }
    if (t.kind === 'ident' && t.text === kw) {
      const next = this.tokens[this.p + 1]!;
      if (after && !next.spaceBefore) {
        this.expect(next.start, WS);
        return false;
      }
      this.p++;
      return true;
    }
    // `notX`: the literal "not" matched, the whitespace after it did not.
    if (after && t.kind === 'ident' && t.text.startsWith(kw)) this.expect(t.start + kw.length, WS);
    else this.expect(t.start, goQuote(kw));
    return false;
  }

  private punct(text: string): boolean {
    const t = this.peek();
    if (t.kind === 'punct' && t.text === text) {
      this.p++;
      return true;
    }
    this.expect(t.start, goQuote(text));
    return false;
  }

  private peek(): Token {
    return this.tokens[this.p]!;
  }

  private expect(pos: number, ...what: string[]): void {
    if (pos < this.failPos) return;
    if (pos > this.failPos) {
      this.failPos = pos;
      this.expected.clear();
    }
    for (const w of what) this.expected.add(w);
  }

  /** pigeon's report when no alternative matched: what it expected at the farthest offset. */
  private noMatch(): FilterError {
    // Whitespace right before the failing token was read by a `_`, which then expected more of it.
    if (this.tokens.some((t) => t.start === this.failPos && t.spaceBefore)) this.expected.add(WS);
    const eof = this.expected.delete('EOF');
    const list = [...this.expected].sort();
    if (eof) list.push('EOF');
    const joined = list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list.at(-1)}` : (list[0] ?? '');
    return new FilterError(`${this.position(this.failPos)}: no match found, expected: ${joined}`);
  }

  /** A rule's own error (pigeon prefixes it with the rule's display name). */
  private ruleError(rule: string, message: string, at: number): never {
    throw new FilterError(`${this.position(at)}: rule "${rule}": ${message}`);
  }

  /** pigeon's `line:col (byte offset)` of a string index; a newline counts as column 0 of the next line. */
  private position(index: number): string {
    let line = 1;
    let col = 0;
    let offset = 0;
    let i = 0;
    for (const ch of this.input) {
      if (i >= index) break;
      col++;
      if (ch === '\n') {
        line++;
        col = 0;
      }
      offset += Buffer.byteLength(ch);
      i += ch.length;
    }
    col++;
    if (this.input[index] === '\n') {
      line++;
      col = 0;
    }
    return `${line}:${col} (${offset})`;
  }
}
