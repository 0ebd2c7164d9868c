/**
 * Writes weft's Grafana dashboards from their sources (grafana/src/, the
 * Grafana Foundation SDK's builders) to grafana/dashboards/*.json, and the
 * panel list of grafana/README.md from the same dashboards.
 *
 *   npm run gen:dashboards                        rewrite after changing grafana/src/
 *   npx tsx scripts/gen-dashboards.ts --check     exit 1 when a file is stale
 *
 * test/grafana/dashboards.test.ts fails while a file is stale (a source edit
 * or an SDK upgrade).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARDS } from '../grafana/src/index.js';
import { panelList, withPanelList } from '../grafana/src/panel-list.js';

/** grafana/ */
export const GRAFANA_DIR = join(import.meta.dirname, '..', 'grafana');
/** Where the JSON goes. */
export const DASHBOARDS_DIR = join(GRAFANA_DIR, 'dashboards');
/** The README whose panel list is generated. */
export const README_PATH = join(GRAFANA_DIR, 'README.md');

/** Every generated file: absolute path -> the text the generator writes now. */
export function generatedFiles(): Map<string, string> {
  const built = DASHBOARDS.map((d) => ({ file: d.file, dashboard: d.build() }));
  const files = new Map<string, string>();
  for (const { file, dashboard } of built) files.set(join(DASHBOARDS_DIR, file), `${JSON.stringify(dashboard, null, 2)}\n`);
  files.set(README_PATH, withPanelList(readFileSync(README_PATH, 'utf8'), panelList(built)));
  return files;
}

/** Files that differ from what the generator writes, and JSON files in grafana/dashboards/ it does not write. */
export function staleFiles(): string[] {
  const files = generatedFiles();
  const stale = [...files].filter(([path, text]) => readFileOr(path) !== text).map(([path]) => path);
  for (const name of readdirSync(DASHBOARDS_DIR)) {
    const path = join(DASHBOARDS_DIR, name);
    if (name.endsWith('.json') && !files.has(path)) stale.push(path);
  }
  return stale;
}

function readFileOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  if (process.argv.includes('--check')) {
    const stale = staleFiles();
    for (const path of stale) console.error(`stale: ${path} (run npm run gen:dashboards)`);
    process.exit(stale.length === 0 ? 0 : 1);
  }
  for (const [path, text] of generatedFiles()) {
    if (readFileOr(path) !== text) {
      writeFileSync(path, text);
      console.log(`wrote ${path}`);
    }
  }
}
