/**
 * Starts a real Prometheus (Debian's package, installed by scripts/setup.sh) on a
 * free loopback port with a given config, and stops it at teardown.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { freePort } from './ports.js';

export interface RunningPrometheus {
  url: string;
  /** GET a Prometheus API path and return its `data`. */
  api<T>(path: string): Promise<T>;
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/** Runs `prometheus` with `configYaml`; resolves once /-/ready answers. */
export async function startPrometheus(t: Teardown, configYaml: string): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-prom-'));
  writeFileSync(join(dir, 'prometheus.yml'), configYaml);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  t.teardown(async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  await eventually(
    async () => {
      if (proc.exitCode !== null) throw new Error(`prometheus exited ${proc.exitCode}: ${stderr}`);
      const res = await fetch(`${url}/-/ready`);
      return res.ok ? true : undefined;
    },
    20_000,
    'prometheus to be ready',
  );
  return {
    url,
    async api<T>(path: string): Promise<T> {
      const res = await fetch(`${url}${path}`);
      const body = (await res.json()) as { status: string; data: T; error?: string };
      if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error}`);
      return body.data;
    },
  };
}
