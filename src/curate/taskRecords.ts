/**
 * What an embed task of an array job (`curate embed --shard I/N`) leaves for the finishing step: one
 * JSON record per embedding shard it wrote, in `<store>/task-records/`, holding exactly what the catalog
 * would have recorded (the sample of every row, the images that could not be decoded). Tasks never
 * write the catalog (DuckDB has one writer at a time, and N tasks run at once); the next `curate embed`
 * without `--shard` registers the records whose shard files are whole, then removes them.
 *
 * Records are written atomically and never changed, so a task killed at any point leaves either a whole
 * record or none; a re-submitted task finds its finished shards by their records and redoes the rest.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { SampleIssue } from '../embed/readers/index.js';
import type { EmbeddingStore } from '../embed/store.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Catalog, EmbeddedShard } from './catalog.js';
import { writeRowMaps } from './rowMap.js';

export const TASK_RECORDS = 'task-records';

interface StoredRecord {
  shard: string;
  datasetId: number;
  part: string;
  /** Catalog sample ids, one per row, as decimal strings (they are 64-bit). */
  sampleIds: string[];
  fingerprint: string;
  seconds: number;
  issues: SampleIssue[];
}

function recordsDir(store: EmbeddingStore): string {
  return path.join(store.dir, TASK_RECORDS);
}

export async function writeTaskRecord(store: EmbeddingStore, shard: EmbeddedShard): Promise<void> {
  const record: StoredRecord = { ...shard, sampleIds: shard.sampleIds.map(String) };
  await mkdir(recordsDir(store), { recursive: true });
  await writeFileAtomic(path.join(recordsDir(store), `${shard.shard}.json`), JSON.stringify(record) + '\n');
}

/** The whole task records for this encoder, by shard name (a record that cannot be parsed is skipped: its shard is embedded again). */
export async function readTaskRecords(
  store: EmbeddingStore,
  fingerprint: string,
): Promise<Map<string, EmbeddedShard>> {
  const dir = recordsDir(store);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
  const records = new Map<string, EmbeddedShard>();
  for (const name of names) {
    let parsed: StoredRecord;
    try {
      parsed = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as StoredRecord;
    } catch {
      continue;
    }
    if (parsed.fingerprint !== fingerprint || `${parsed.shard}.json` !== name) continue;
    records.set(parsed.shard, { ...parsed, sampleIds: parsed.sampleIds.map((id) => BigInt(id)) });
  }
  return records;
}

/**
 * Register the tasks' finished shards in the catalog (and write their row maps), then drop their
 * records. A record whose shard files are missing or cut short is dropped without registering: that
 * shard is embedded again. Returns how many shards were registered.
 */
export async function registerTaskRecords(
  catalog: Catalog,
  store: EmbeddingStore,
  fingerprint: string,
): Promise<number> {
  const records = await readTaskRecords(store, fingerprint);
  let registered = 0;
  for (const record of records.values()) {
    if (await store.hasShard(record.shard, record.sampleIds.length)) {
      await catalog.recordEmbeddedShard(record);
      await writeRowMaps(catalog, store, record.shard);
      registered += 1;
    }
    await rm(path.join(recordsDir(store), `${record.shard}.json`), { force: true });
  }
  return registered;
}
