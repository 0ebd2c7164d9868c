/**
 * `matches` takes a Go (RE2) regular expression. The dev agent runs it as a
 * JavaScript RegExp after translating the RE2 spellings JavaScript lacks:
 * leading flags `(?i)` `(?m)` `(?s)`, named groups `(?P<name>...)`, `\A`,
 * `\z`, `\Q...\E` and POSIX classes such as `[[:alpha:]]`. What RE2 refuses
 * (look-arounds, back-references) is refused here too, so an expression that
 * works against the dev agent also compiles in Consul. RE2 syntax with no
 * faithful translation (flags past the start or on a group, `(?U)`, `\pL`
 * Unicode classes, negated POSIX classes) is refused with a message saying
 * so, rather than run with another meaning. Like Go's MatchString, the match
 * is unanchored.
 */

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-/:-@[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

/** Go's regexp error text, as go-bexpr wraps it ("error parsing regexp: ..."). */
export class RegexpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegexpError';
  }
}

/** Compiles an RE2 pattern to an equivalent JavaScript RegExp, or throws RegexpError. */
export function compileGoRegexp(pattern: string): RegExp {
  let flags = '';
  let src = pattern;
  const leading = /^\(\?([imsU]+)\)/.exec(src);
  if (leading !== null) {
    if (leading[1]!.includes('U')) throw new RegexpError(unsupported('(?U)', pattern));
    flags = [...new Set(leading[1]!)].join('');
    src = src.slice(leading[0].length);
  }
  const translated = translate(src, pattern);
  try {
    return new RegExp(translated, flags);
  } catch (err) {
    throw new RegexpError(`error parsing regexp: ${jsReason((err as Error).message)}: \`${pattern}\``);
  }
}

/** RE2 syntax JavaScript has no equivalent for (Consul would accept it). */
function unsupported(what: string, pattern: string): string {
  return `error parsing regexp: \`${what}\` is valid RE2 but the weft dev agent cannot run it: \`${pattern}\``;
}

function translate(src: string, pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      const e = src[i + 1];
      if (e === undefined) throw new RegexpError('error parsing regexp: trailing backslash at end of expression: ``');
      if (e >= '1' && e <= '9') throw new RegexpError(`error parsing regexp: invalid escape sequence: \`\\${e}\``);
      // Unicode classes (\pL, \p{Greek}) need JavaScript's u flag, which changes other escapes: not run.
      if (e === 'p' || e === 'P') throw new RegexpError(unsupported(`\\${e}`, pattern));
      if (!inClass && e === 'A') out += '(?<![\\s\\S])';
      else if (!inClass && e === 'z') out += '(?![\\s\\S])';
      else if (e === 'Q') {
        const end = src.indexOf('\\E', i + 2);
        const literal = src.slice(i + 2, end === -1 ? undefined : end);
        out += literal.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        i = end === -1 ? src.length : end + 1;
        continue;
      } else out += c + e;
      i++;
      continue;
    }
    if (inClass) {
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(i));
      if (posix !== null) {
        const chars = POSIX_CLASSES[posix[2]!];
        if (chars === undefined) throw new RegexpError(`error parsing regexp: invalid character class range: \`${posix[0]}\``);
        if (posix[1] === '^') throw new RegexpError(unsupported(posix[0], pattern));
        out += chars;
        i += posix[0].length - 1;
        continue;
      }
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      // A ']' first in a class (after an optional '^') is a literal in RE2.
      if (src[i + 1] === '^') out += src[++i];
      if (src[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const rest = src.slice(i);
      if (rest.startsWith('(?P<')) {
        out += '(?<';
        i += 3;
        continue;
      }
      const look = /^\(\?(=|!|<=|<!)/.exec(rest);
      if (look !== null) throw new RegexpError(`error parsing regexp: invalid or unsupported Perl syntax: \`${look[0]}\``);
      // Flags anywhere but at the very start, or for a group only: (?i:...), a(?s)b.
      const flags = /^\(\?[imsU-]+[:)]/.exec(rest);
      if (flags !== null) throw new RegexpError(unsupported(flags[0], pattern));
    }
    out += c;
  }
  return out;
}

/** JavaScript's reason ("Invalid regular expression: /x/: Unterminated group") in RE2's words where they differ. */
function jsReason(message: string): string {
  const reason = message.slice(message.lastIndexOf(': ') + 2);
  const words: Readonly<Record<string, string>> = {
    'Unterminated group': 'missing closing )',
    'Unterminated character class': 'missing closing ]',
    'Nothing to repeat': 'missing argument to repetition operator',
    "Unmatched ')'": 'unexpected )',
    'Range out of order in character class': 'invalid character class range',
    'numbers out of order in {} quantifier': 'invalid repeat count',
    'Invalid group': 'invalid or unsupported Perl syntax',
  };
  return words[reason] ?? reason.charAt(0).toLowerCase() + reason.slice(1);
}
