/**
 * Docker for tests: makes sure a daemon answers (starting Debian's dockerd with
 * `--bridge=none --iptables=false` when none does), builds the demo image
 * (scripts/build-test-image.sh, a no-op when it exists), and removes every
 * container the test started.
 *
 *   const d = await useDocker(t);
 *   const labels = { ...d.testLabels, 'weft.service': 'web' };   // teardown finds it by these
 *
 * A daemon this helper started is stopped by the last test process using it
 * (tap runs files in parallel): each process leaves a marker file while it
 * runs, and the daemon stops when no live marker remains. A daemon that was
 * already running is never stopped.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import type { TeardownHost } from './dev-consul.js';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STATE = '/tmp/weft-test-dockerd';
/** Label on every container a test starts; the value is the test process's pid. */
export const TEST_LABEL = 'io.weft.test';

/** What a test gets. */
export interface TestDocker {
  docker: Docker;
  /** The demo image reference (scripts/demo-app.mjs inside, node as its runtime). */
  image: string;
  /** Put these on every container the test creates, so teardown removes it. */
  testLabels: Record<string, string>;
  /** `docker ...` on the command line, for the "started by hand" cases. Returns stdout. */
  cli(...args: string[]): Promise<string>;
}

let image: string | undefined;

/** Ensures dockerd and the demo image, and registers cleanup with `t`. */
export async function useDocker(t: TeardownHost): Promise<TestDocker> {
  const docker = new Docker();
  mkdirSync(join(STATE, 'users'), { recursive: true });
  const marker = join(STATE, 'users', String(process.pid));
  writeFileSync(marker, '');
  if (!(await answers(docker))) await startDaemon(docker);
  image ??= (await run('bash', [join(ROOT, 'scripts', 'build-test-image.sh')], { cwd: ROOT })).stdout.trim();
  await removeStrays(docker);
  const testLabels = { [TEST_LABEL]: String(process.pid) };
  t.teardown(async () => {
    await removeOwn(docker);
    rmSync(marker, { force: true });
    await stopDaemonIfLast();
  });
  return {
    docker,
    image,
    testLabels,
    async cli(...args) {
      return (await run('docker', args)).stdout;
    },
  };
}

async function answers(docker: Docker): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

async function startDaemon(docker: Docker): Promise<void> {
  // Test files run in parallel: one process starts the daemon, the others wait for it.
  const lock = join(STATE, 'starting');
  try {
    closeSync(openSync(lock, 'wx'));
  } catch {
    if (await waitForDaemon(docker)) return;
    rmSync(lock, { force: true }); // a stale lock from a crashed run
    return startDaemon(docker);
  }
  try {
    await spawnDaemon(docker);
  } finally {
    rmSync(lock, { force: true });
  }
}

async function waitForDaemon(docker: Docker): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (await answers(docker)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** A daemon still shutting down (the previous test file stopped it) holds docker.pid: let it finish first. */
async function waitForOldDaemon(docker: Docker): Promise<boolean> {
  let pid: number;
  try {
    pid = Number(readFileSync('/var/run/docker.pid', 'utf8'));
  } catch {
    return false;
  }
  for (let i = 0; i < 300 && alive(pid); i++) {
    if (await answers(docker)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function spawnDaemon(docker: Docker): Promise<void> {
  if (await waitForOldDaemon(docker)) return;
  const log = openSync(join(STATE, 'dockerd.log'), 'a');
  const child = spawn('dockerd', ['--bridge=none', '--iptables=false'], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start dockerd (apt-get install docker.io): ${err.message}`)));
  });
  writeFileSync(join(STATE, 'started-pid'), String(child.pid));
  if (await waitForDaemon(docker)) return;
  throw new Error(`dockerd did not answer within 30 s; see ${join(STATE, 'dockerd.log')}`);
}

async function stopDaemonIfLast(): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(STATE, 'started-pid'), 'utf8'));
  } catch {
    return; // not ours
  }
  const users = readdirSync(join(STATE, 'users')).filter((p) => alive(Number(p)));
  if (users.length > 0) return;
  rmSync(join(STATE, 'started-pid'), { force: true });
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 300 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

async function removeOwn(docker: Docker): Promise<void> {
  const rows = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${process.pid}`] } });
  await Promise.all(rows.map((r) => docker.getContainer(r.Id).remove({ force: true }).catch(() => undefined)));
}

/** Containers of test processes that died without cleaning up. */
async function removeStrays(docker: Docker): Promise<void> {
  const rows = await docker.listContainers({ all: true, filters: { label: [TEST_LABEL] } });
  const dead = rows.filter((r) => !alive(Number(r.Labels[TEST_LABEL])));
  await Promise.all(dead.map((r) => docker.getContainer(r.Id).remove({ force: true }).catch(() => undefined)));
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
