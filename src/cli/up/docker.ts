/**
 * `weft up` and Docker: whether the hosts run containers or processes (decided
 * once, for every host, and said), weft's demo image for the demo's
 * containers (built on this machine with `docker import`, no registry), and
 * the removal of the demo's containers that outlived a stop.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { WeftError } from '../../../base/errors.js';

/** The driver every host gets, and the line that says why. */
export async function decideDriver(configured: 'auto' | 'docker' | 'process'): Promise<{ driver: 'docker' | 'process'; why: string }> {
  if (configured === 'process') return { driver: 'process', why: 'driver: process (as configured); every workload is a process on this machine' };
  const { DockerDriver } = await import('../../../agent/index.js');
  const answers = await new DockerDriver().ping();
  if (configured === 'docker') {
    if (!answers) {
      throw new WeftError('WEFT_ERR_DOCKER_UNAVAILABLE', 'agent.driver is docker but the Docker daemon does not answer (DOCKER_HOST or /var/run/docker.sock); start it, or run `weft up --driver process`', {
        key: 'agent.driver',
        value: 'docker',
      });
    }
    return { driver: 'docker', why: 'driver: docker (as configured)' };
  }
  return answers
    ? { driver: 'docker', why: 'driver: docker, since a Docker daemon answers (`weft up --driver process` runs processes instead)' }
    : { driver: 'process', why: 'driver: process, since no Docker daemon answers (containers need one; `--driver docker` insists on it)' };
}

/** Builds (or finds) weft's demo image with scripts/build-test-image.sh; resolves to its reference. */
export function buildDemoImage(root: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(root, 'scripts', 'build-test-image.sh')], { cwd: root, timeout: 5 * 60_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new WeftError('WEFT_ERR_UP_START', `building the demo image failed: ${stderr.trim() || err.message}`, { key: 'piece', value: 'image' }));
      else resolve(stdout.trim());
    });
  });
}

/** Removes the containers of allocations `ids` still there (the agents are gone by now); how many. */
export async function removeContainers(ids: ReadonlySet<string>): Promise<number> {
  try {
    const { DockerDriver } = await import('../../../agent/index.js');
    const docker = new DockerDriver();
    if (!(await docker.ping())) return 0;
    let removed = 0;
    for (const task of await docker.list({ all: true, label: 'io.weft.alloc' })) {
      if (!ids.has(task.labels['io.weft.alloc'] ?? '')) continue;
      await docker.remove(task.id, { force: true });
      removed++;
    }
    return removed;
  } catch {
    return 0;
  }
}
