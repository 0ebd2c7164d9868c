/**
 * Constraints and affinities compiled once per job version into matchers that
 * test a node attribute. `version` takes a semver range and reads node values
 * loosely (`5.10.0-1-amd64` is 5.10.0), as Nomad's version constraint does with
 * go-version.
 */
import semver from 'semver';
import type { Matcher, NodeInfo } from '../model.js';

/** The operators the job spec accepts. */
export type MatcherOperator = Matcher['operator'];

/** Built-in attributes every node has, besides the ones its agent advertises. */
export const BUILTIN_ATTRIBUTES = ['node.name', 'node.address'] as const;

/** A node's value for an attribute: built-ins first, then its advertised attributes. */
export function attributeOf(node: NodeInfo, attribute: string): string | undefined {
  if (attribute === 'node.name') return node.name;
  if (attribute === 'node.address') return node.address;
  return node.attributes[attribute];
}

/** Nomad writes ranges with commas (`>= 5.10, < 7`); semver wants spaces. */
export function normalizeRange(range: string): string {
  return range.replaceAll(',', ' ');
}

/** Compiles one constraint; the spec validator has already checked the value parses. */
export function compileMatcher(attribute: string, operator: MatcherOperator = '=', value?: string): Matcher {
  const label = operator === 'is_set' || operator === 'is_not_set' ? `${attribute} ${operator}` : `${attribute} ${operator} ${value}`;
  return { attribute, operator, value, label, test: testFor(operator, value ?? '') };
}

function testFor(operator: MatcherOperator, value: string): (v: string | undefined) => boolean {
  switch (operator) {
    case '=':
      return (v) => v === value;
    case '!=':
      // A node without the attribute is not equal to it (Nomad agrees).
      return (v) => v !== value;
    case 'regexp': {
      const re = new RegExp(value);
      return (v) => v !== undefined && re.test(v);
    }
    case 'version': {
      const range = new semver.Range(normalizeRange(value), { loose: true });
      return (v) => {
        const parsed = v === undefined ? null : semver.coerce(v, { loose: true });
        return parsed !== null && range.test(parsed);
      };
    }
    case 'is_set':
      return (v) => v !== undefined;
    case 'is_not_set':
      return (v) => v === undefined;
  }
}
