/**
 * The layering rules of weft's tree, as a pure check over file contents
 * (README.md, "Layout"; ARCHITECTURE.md, "Layout and boundaries"):
 *
 * - base/ (the bottom layer) imports nothing of weft outside base/;
 * - a module (proxy/, discovery/, certs/, scheduler/, agent/) imports base/,
 *   its own files, and other modules only through their public surfaces;
 * - src/ (the application) reaches modules only through their public surfaces,
 *   and nothing below it imports src/;
 * - proxy/inbound/ and proxy/outbound/ never import each other;
 * - only proxy/h1/llhttp.ts touches Node's internal modules.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

export const BASE = 'base';
export const MODULES = ['proxy', 'discovery', 'certs', 'scheduler', 'agent'] as const;
export const APPLICATION = 'src';
/** Each module's public surfaces: the only files another folder may import. */
export const SURFACES: readonly string[] = [
  'proxy/index.ts',
  'discovery/index.ts',
  'discovery/dev-agent/index.ts',
  'certs/index.ts',
  'certs/runtime.ts',
  'scheduler/index.ts',
  'agent/index.ts',
];
/** The one file allowed to reach Node's undocumented internals (proxy/README.md, "The parser seam"). */
export const NODE_INTERNALS_SEAM = 'proxy/h1/llhttp.ts';

/** One import that breaks a rule. */
export interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly rule: string;
}

const IMPORT_RE = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every module specifier a source file imports or re-exports, static or dynamic. */
export function importsOf(source: string): string[] {
  const stripped = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of stripped.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2])!);
  return out;
}

function topOf(path: string): string {
  return path.split('/')[0]!;
}

function moduleOf(path: string): string | undefined {
  const top = topOf(path);
  return (MODULES as readonly string[]).includes(top) ? top : undefined;
}

function isSurface(path: string): boolean {
  return SURFACES.includes(path);
}

/** The rule `file` breaks by importing `specifier`, or undefined. `file` is relative to the root. */
export function ruleBroken(file: string, specifier: string): string | undefined {
  if (/^(node:)?_/.test(specifier) || specifier.startsWith('node:_')) {
    return file === NODE_INTERNALS_SEAM ? undefined : `only ${NODE_INTERNALS_SEAM} may import Node internals`;
  }
  if (!specifier.startsWith('.')) return undefined;
  const target = normalize(join(dirname(file), specifier)).replace(/\.js$/, '.ts');
  const from = topOf(file);
  const to = topOf(target);
  if (from === BASE) return to === BASE ? undefined : 'base/ imports nothing of weft outside base/';
  if (to === APPLICATION && from !== APPLICATION) return 'nothing below the application imports src/';
  const fromModule = moduleOf(file);
  const toModule = moduleOf(target);
  if (fromModule !== undefined && fromModule === toModule) {
    if (fromModule === 'proxy') {
      const inbound = (p: string) => p.startsWith('proxy/inbound/');
      const outbound = (p: string) => p.startsWith('proxy/outbound/');
      if ((inbound(file) && outbound(target)) || (outbound(file) && inbound(target))) return 'proxy/inbound and proxy/outbound never import each other';
    }
    return undefined;
  }
  if (toModule !== undefined && !isSurface(target)) return `another folder reaches ${toModule}/ only through its public surface (${SURFACES.filter((s) => s.startsWith(`${toModule}/`)).join(', ')})`;
  if (toModule === undefined && to !== BASE && to !== APPLICATION) return `production code imports only base/, modules and src/ (not ${to}/)`;
  return undefined;
}

/** Every violation in a tree given as relative path -> source. */
export function violations(files: ReadonlyMap<string, string>): Violation[] {
  const out: Violation[] = [];
  for (const [file, source] of files) {
    for (const specifier of importsOf(source)) {
      const rule = ruleBroken(file, specifier);
      if (rule !== undefined) out.push({ file, specifier, rule });
    }
  }
  return out;
}

/** The production sources of the tree at `root`: base/, the modules and src/. */
export function productionSources(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir))) {
      const path = `${dir}/${entry}`;
      if (statSync(join(root, path)).isDirectory()) walk(path);
      else if (/\.(ts|mts|js|mjs)$/.test(entry)) files.set(relative(root, join(root, path)), readFileSync(join(root, path), 'utf8'));
    }
  };
  for (const dir of [BASE, ...MODULES, APPLICATION]) walk(dir);
  return files;
}

const VALUE_IMPORT_RE = /(?:^|[;\s])(?:import|export)\s+(?!type\s)(?:[\w*{}\s,$]+?\s+from\s+)?['"](\.[^'"]+)['"]/g;

/**
 * Loops of value imports among the production files (type-only imports are
 * erased and cannot loop at run time). ES modules tolerate a loop until one
 * side reads the other's binding during evaluation, then fail with a
 * ReferenceError at start-up; a loop is also two files that cannot be
 * understood apart.
 */
export function importCycles(files: ReadonlyMap<string, string>): string[][] {
  const graph = new Map<string, string[]>();
  for (const [file, source] of files) {
    const stripped = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    const targets: string[] = [];
    for (const m of stripped.matchAll(VALUE_IMPORT_RE)) {
      // `import { type A, type B } from` is type-only too.
      const names = /\{([^}]*)\}/.exec(m[0])?.[1];
      if (names?.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
      const target = normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts');
      if (files.has(target)) targets.push(target);
    }
    graph.set(file, targets);
  }
  // Tarjan's strongly connected components; every component of more than one file is a loop.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}
