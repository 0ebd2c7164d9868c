/**
 * Shared set-up of the stand-in client tests: one fake scheduler per test file,
 * a temporary directory, the environment that points the CLI at the fake, and
 * job files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAKE_TOKEN, type FakeScheduler, startFakeScheduler } from './fake-scheduler.js';

/** What a stand-in test file works with. */
export interface ClientEnv {
  fake: FakeScheduler;
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Writes a one-group job `name` with `count` instances; returns its path. */
  jobFile(name: string, count: number): string;
}

/** Starts the fake and registers its teardown on `t`. */
export async function clientEnv(t: { teardown(fn: () => unknown): void }): Promise<ClientEnv> {
  const fake = await startFakeScheduler();
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'));
  t.teardown(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    fake,
    dir,
    env: { WEFT_ADDR: fake.address, WEFT_TOKEN: FAKE_TOKEN, WEFT_DATA_DIR: join(dir, 'data') },
    jobFile(name, count) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, `name: ${name}\ngroups:\n  - name: ${name}\n    count: ${count}\n    tasks:\n      - name: app\n        driver: process\n        command: /bin/true\n`);
      return file;
    },
  };
}

/** An ANSI escape: must never reach a pipe. */
export const ESC = '\u001b[';
