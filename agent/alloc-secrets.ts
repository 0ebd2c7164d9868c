/**
 * An allocation's secrets made ready for its task, at every start (first start
 * and each restart, so a rotated value or a wiped directory is repaired):
 *
 *   names in the allocation ─▶ SecretSource (scheduler API, host token) ─▶ values
 *     secrets[].env  ─▶ TaskSpec.secretEnv (drivers keep it out of their state files)
 *     secrets[].file ─▶ <dataDir>/agent/secrets/<alloc>/<name> (dir 0700, file 0600)
 *        docker:  bind-mounted read-only at the spec's path; WEFT_SECRET_<NAME> = that path
 *        process: cannot mount, so WEFT_SECRET_<NAME> = the host file's path
 *
 * Values never reach logs, KV, the allocation's status or a driver's state:
 * only paths and names do. The directory goes when the allocation stops.
 */
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../base/atomic-write.js';
import type { Allocation } from '../base/contracts/alloc.js';
import { WeftError } from '../base/errors.js';
import type { TaskMount } from './driver.js';
import type { SecretSource } from './scheduler-secrets.js';

/** Prefix of the env variable naming a file secret's path: `WEFT_SECRET_<NAME>`. */
export const SECRET_FILE_ENV_PREFIX = 'WEFT_SECRET_';

/** The env variable naming secret `name`'s file: the name upper-cased, other characters as `_`. */
export function secretFileEnv(name: string): string {
  return SECRET_FILE_ENV_PREFIX + name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** What a task gets from its allocation's secrets. */
export interface PreparedSecrets {
  /** Values for the task's environment (TaskSpec.secretEnv). */
  secretEnv: Record<string, string>;
  /** Paths only (WEFT_SECRET_<NAME>): safe to persist. */
  env: Record<string, string>;
  /** Docker: one read-only bind mount per file secret. */
  mounts: TaskMount[];
}

/** Writes, mounts and removes the secret files of this host's allocations. */
export class AllocSecrets {
  private readonly root: string | undefined;
  private readonly source: SecretSource | undefined;
  private readonly host: string;

  /**
   * `root` is `<dataDir>/agent/secrets` (undefined: file secrets fail, as in tests without a data
   * directory); `source` is undefined when the agent has no scheduler token.
   */
  constructor(opts: { root: string | undefined; host: string; source: SecretSource | undefined }) {
    this.root = opts.root;
    this.host = opts.host;
    this.source = opts.source;
  }

  /** The directory of one allocation's files, when this agent has a secrets root. */
  dirOf(alloc: string): string | undefined {
    return this.root === undefined ? undefined : join(this.root, alloc);
  }

  /** Fetches the allocation's values and writes its files; WEFT_ERR_ALLOC_SECRETS names the allocation and secret, never a value. */
  async prepare(alloc: Allocation): Promise<PreparedSecrets> {
    const out: PreparedSecrets = { secretEnv: {}, env: {}, mounts: [] };
    const refs = alloc.secrets ?? [];
    if (refs.length === 0) return out;
    if (this.source === undefined) {
      throw new WeftError('WEFT_ERR_ALLOC_SECRETS', `allocation ${alloc.id} names secrets but this agent has no scheduler token (--token, WEFT_TOKEN or client.token)`, {
        key: 'client.token',
        value: alloc.id,
      });
    }
    let values: Map<string, string>;
    try {
      values = await this.source(this.host, alloc.id);
    } catch (err) {
      throw new WeftError('WEFT_ERR_ALLOC_SECRETS', `allocation ${alloc.id}: could not fetch its secrets: ${(err as Error).message}`, { key: 'alloc', value: alloc.id, cause: err });
    }
    const dir = this.dirOf(alloc.id);
    for (const ref of refs) {
      const value = values.get(ref.name);
      if (value === undefined) throw new WeftError('WEFT_ERR_ALLOC_SECRETS', `allocation ${alloc.id}: secret ${ref.name} not returned by the scheduler`, { key: 'secrets', value: ref.name });
      if (ref.env !== undefined) out.secretEnv[ref.env] = value;
      if (ref.file === undefined) continue;
      if (dir === undefined) throw new WeftError('WEFT_ERR_ALLOC_SECRETS', `allocation ${alloc.id}: secret ${ref.name} is a file but this agent has no secrets directory`, { key: 'secrets', value: ref.name });
      const path = this.write(dir, ref.name, value);
      if (alloc.driver === 'docker') {
        out.mounts.push({ type: 'bind', source: path, destination: ref.file, readOnly: true });
        out.env[secretFileEnv(ref.name)] = ref.file;
      } else {
        out.env[secretFileEnv(ref.name)] = path;
      }
    }
    return out;
  }

  /** Removes an allocation's files (stopped, replaced or failed to start). */
  remove(alloc: string): void {
    const dir = this.dirOf(alloc);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }

  /** Removes the directories of allocations not in `keep` (stopped while no agent ran). */
  sweep(keep: ReadonlySet<string>): void {
    if (this.root === undefined) return;
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    for (const name of names) if (!keep.has(name)) this.remove(name);
  }

  private write(dir: string, name: string, value: string): string {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // mkdir's mode is masked by the umask, and an existing dir keeps its own
    const path = join(dir, name);
    try {
      writeFileAtomicSync(path, value, { mode: 0o600 }); // a restarting task never reads half a value
    } catch (err) {
      throw new WeftError('WEFT_ERR_ALLOC_SECRETS', `${path}: cannot write the secret file: ${(err as Error).message}`, { key: 'path', value: path, cause: err });
    }
    return path;
  }
}
