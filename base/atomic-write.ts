/**
 * The one atomic file write of weft: state files, caches, secrets, keys and
 * certificates all go through it, so a reader (or the next start after a
 * crash) sees either the old file or the new one, never half of one.
 *
 *   data ─▶ <path>.<pid>.<n><random>.tmp  (created exclusively, with its final mode)
 *        ─▶ fsync the file ─▶ rename over <path> ─▶ fsync the directory
 *
 * - The temporary name is unique per write (process id, a counter, random
 *   bytes): two writers in one process, or two processes with the same pid
 *   in different containers sharing a volume, never write into one file.
 * - The mode is given at creation (and then set exactly, past the umask), so
 *   a 0600 file never exists, not even as its temporary, with a wider mode.
 * - The file is fsynced before the rename (else a crash can leave the new
 *   name pointing at an empty file), and the directory after it (else the
 *   rename itself may not survive a crash).
 * - On failure the temporary file is removed and the error rethrown: the
 *   target is untouched.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface AtomicWriteOptions {
  /** The file's permission bits (e.g. 0o600), applied at creation; default 0o666 less the umask, as writeFile. */
  readonly mode?: number | undefined;
}

/** What the two forms accept (as fs.writeFile; strings are written as UTF-8). */
export type AtomicWriteData = string | Uint8Array;

let written = 0;

/** A temporary name next to `path` (same directory, so the rename is atomic) that no other write uses. */
function temporaryName(path: string): string {
  return `${path}.${process.pid}.${++written}${randomBytes(4).toString('hex')}.tmp`;
}

/** Writes `data` to `path` atomically and durably; throws (with `path` untouched) on failure. */
export function writeFileAtomicSync(path: string, data: AtomicWriteData, opts: AtomicWriteOptions = {}): void {
  const tmp = temporaryName(path);
  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(tmp, 'wx', opts.mode ?? 0o666);
    created = true;
    if (opts.mode !== undefined) fchmodSync(fd, opts.mode);
    writeFileSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    // Only a temporary this call created is removed: a failed exclusive open created nothing.
    if (fd !== undefined) closeQuietly(fd);
    if (created) removeQuietly(tmp);
    throw err;
  }
  syncDirectory(dirname(path));
}

/** The promise form of writeFileAtomicSync, for callers that must not block the event loop. */
export async function writeFileAtomic(path: string, data: AtomicWriteData, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = temporaryName(path);
  let fh: FileHandle | undefined;
  let created = false;
  try {
    fh = await open(tmp, 'wx', opts.mode ?? 0o666);
    created = true;
    if (opts.mode !== undefined) await fh.chmod(opts.mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (err) {
    if (fh !== undefined) await fh.close().catch(() => undefined);
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDirectoryAsync(dirname(path));
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // already failing: the first error is the one to report
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already failing: the first error is the one to report
  }
}

/**
 * Makes the rename durable. Best effort: the new file is already in place,
 * and a file system that cannot fsync a directory must not make a completed
 * write look failed.
 */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // see above
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

async function syncDirectoryAsync(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // see syncDirectory
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
