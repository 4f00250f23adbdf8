/** Content of a workspace's embedding store, for byte-for-byte comparisons between workspaces. */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { embeddingsDir } from '../../src/curate/api.js';

/**
 * SHA-256 of every `.npy` of the store, keyed by part and tower (`mini-000.image`): shard names also
 * hold a hash of the part's path, which differs between workspaces that read the same data.
 */
export async function storeContents(workspace: string): Promise<Record<string, string>> {
  const dir = embeddingsDir(workspace);
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).filter((f) => f.endsWith('.npy')).sort())
    out[`${name.split('.')[0]}.${name.split('.').at(-2)}`] = createHash('sha256')
      .update(await readFile(path.join(dir, name)))
      .digest('hex');
  return out;
}
