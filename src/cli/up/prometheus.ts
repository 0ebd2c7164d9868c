/**
 * `weft up --prometheus`: Debian's Prometheus beside the other pieces, with
 * the shipped HTTP-SD configuration (grafana/prometheus-http-sd.yml) and
 * rules (grafana/rules/*.yml). Its configuration is a copy of the shipped
 * one with this machine's paths made absolute (the Consul address, the rules,
 * the scheduler's token file), written to `<data-dir>/prometheus/`, with its
 * TSDB beside it. HTTP SD is served by weft's dev Consul agent: a real
 * Consul has no such route (use grafana/prometheus.yml with an upstream
 * Prometheus there).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { parseConsulAddress } from '../../../discovery/index.js';
import type { Config } from '../../config/load.js';
import type { Probe } from './probes.js';

/** Where Prometheus listens unless `--prometheus <host:port>` says otherwise. */
export const DEFAULT_PROMETHEUS_LISTEN = '127.0.0.1:9090';

/** The files Prometheus is started with. */
export interface PrometheusFiles {
  /** `<data-dir>/prometheus`. */
  dir: string;
  configFile: string;
  dataDir: string;
}

/** The paths under the data directory, absolute (Prometheus resolves a config's paths against its own directory). */
export function prometheusFiles(config: Readonly<Config>): PrometheusFiles {
  const dir = resolve(config.dataDir, 'prometheus');
  return { dir, configFile: join(dir, 'prometheus.yml'), dataDir: join(dir, 'data') };
}

/** grafana/ of this checkout: found by walking up from this module (src/cli/up/ in the sources, dist/ in the bundle). */
export function grafanaDir(from: string = import.meta.dirname): string | undefined {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'grafana', 'prometheus-http-sd.yml'))) return join(dir, 'grafana');
    dir = dirname(dir);
  }
  return undefined;
}

interface ScrapeConfig {
  job_name: string;
  http_sd_configs?: Array<{ url: string; authorization?: { type: string; credentials_file: string } }>;
  authorization?: { credentials_file?: string };
}

/**
 * The configuration `weft up` gives Prometheus: `shipped` (the text of
 * grafana/prometheus-http-sd.yml) with its SD URLs pointing at `consulAddress`,
 * its rule files at `rulesDir`, and the scheduler's token read from
 * `tokenFile`; with `consulTokenFile` (`weft up --acl`), every SD request
 * carries the Consul token in it, and the answer lists what that token may
 * read. Pure.
 */
export function prometheusUpConfig(shipped: string, opts: { consulAddress: string; rulesDir: string; tokenFile: string; consulTokenFile?: string | undefined }): string {
  const doc = parse(shipped) as { rule_files?: string[]; scrape_configs: ScrapeConfig[] };
  const consul = parseConsulAddress(opts.consulAddress);
  const base = `${consul.secure ? 'https' : 'http'}://${consul.host.includes(':') ? `[${consul.host}]` : consul.host}:${consul.port}`;
  doc.rule_files = [join(opts.rulesDir, '*.yml')];
  for (const job of doc.scrape_configs) {
    for (const sd of job.http_sd_configs ?? []) {
      const url = new URL(sd.url);
      sd.url = `${base}${url.pathname}${url.search}`;
      if (opts.consulTokenFile !== undefined) sd.authorization = { type: 'Bearer', credentials_file: opts.consulTokenFile };
    }
    if (job.authorization?.credentials_file !== undefined) job.authorization.credentials_file = opts.tokenFile;
  }
  return `# Written by \`weft up --prometheus\` from grafana/prometheus-http-sd.yml; rewritten at every start.\n${stringify(doc)}`;
}

/**
 * Writes the configuration for this run and returns Prometheus' arguments.
 * The scheduler's token: `scheduler.token` when configured (copied to a 0600
 * file beside the configuration), else the file the scheduler writes. Under
 * `--acl`, `consulTokenFile` holds Prometheus' own Consul token.
 */
export function preparePrometheus(config: Readonly<Config>, listen: string, grafana: string, consulTokenFile?: string): string[] {
  const files = prometheusFiles(config);
  mkdirSync(files.dataDir, { recursive: true, mode: 0o700 });
  let tokenFile = resolve(config.dataDir, 'scheduler', 'token');
  if (config.scheduler.token !== undefined) {
    tokenFile = join(files.dir, 'scheduler-token');
    writeFileSync(tokenFile, config.scheduler.token, { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
  }
  const shipped = readFileSync(join(grafana, 'prometheus-http-sd.yml'), 'utf8');
  writeFileSync(files.configFile, prometheusUpConfig(shipped, { consulAddress: config.consul.address, rulesDir: join(grafana, 'rules'), tokenFile, consulTokenFile }));
  return [`--config.file=${files.configFile}`, `--storage.tsdb.path=${files.dataDir}`, `--web.listen-address=${listen}`, '--log.level=warn'];
}

/** The `prometheus` executable on PATH, if any. */
export function findPrometheus(path: string = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'prometheus');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Prometheus' URL for people and probes (a wildcard listen is reached on loopback). */
export function prometheusUrl(listen: string): string {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon);
  const port = listen.slice(colon + 1);
  const reachable = host === '' || host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
  return `http://${reachable}:${port}`;
}

/** Ready once /-/ready answers 200 (the TSDB is open and the config loaded). */
export function prometheusProbe(url: string): Probe {
  return async () => {
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel().catch(() => undefined);
      return res.ok;
    } catch {
      return false;
    }
  };
}
