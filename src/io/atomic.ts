/**
 * Atomic file writes for workspace state: write a temporary file beside the target, fsync it, rename it
 * over the target, fsync the folder. A reader sees the old file or the new one, never a torn one, even
 * after kill -9 or a power cut. On failure (ENOSPC, EACCES, …) the temporary file is removed and the
 * error names the target.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FailpointName } from './failpoints.js';
import { failpoint } from './failpoints.js';

/** A write that failed, naming the file and the reason (`code` is the system error, e.g. ENOSPC). */
export class WriteError extends Error {
  override name = 'WriteError';
  constructor(
    readonly file: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(`cannot write ${file}: ${describe(code, cause)}`, { cause });
  }
}

function describe(code: string | undefined, cause: unknown): string {
  if (code === 'ENOSPC') return 'no space left on the device';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'read-only file system';
  return (cause as Error)?.message ?? String(cause);
}

export interface AtomicWriteOptions {
  /** Kill point between the temporary file being complete and the rename (tests only). */
  failpoint?: FailpointName;
}

/** Write `data` to `file` atomically (see the module comment). */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.failpoint) failpoint(options.failpoint);
    await rename(tmp, file);
    await syncDir(path.dirname(file));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new WriteError(file, (err as NodeJS.ErrnoException).code, err);
  }
}

/** fsync a folder so a rename inside it survives a crash (a no-op where folders cannot be opened). */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* Windows and some file systems cannot fsync a folder */
  }
}
