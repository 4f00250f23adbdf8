import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DuckDBInstance,
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBValue,
} from '@duckdb/node-api';
import type { ImageInfo } from '../embed/imageCheck.js';
import { WorkspaceStateError } from '../embed/store.js';
import type { DatasetPart, IssueKind, Sample, SampleIssue, Severity } from '../embed/readers/types.js';

export const CATALOG_FILE = 'catalog.duckdb';

/**
 * The workspace's persistent record of samples: one DuckDB file. Later stages add their own tables
 * (embeddings, scores, selections) keyed by `samples.id`.
 *
 * A dataset is read part by part (shard, manifest, folder). Each part's rows go to staging tables and
 * are merged in one transaction that also marks the part done, so an interrupted run keeps every part
 * it finished and a re-run reads only parts that are new, changed or unfinished.
 */
const SCHEMA = `
CREATE SEQUENCE IF NOT EXISTS dataset_id_seq;
CREATE SEQUENCE IF NOT EXISTS sample_id_seq;
CREATE TABLE IF NOT EXISTS datasets (
  id INTEGER PRIMARY KEY DEFAULT nextval('dataset_id_seq'),
  name VARCHAR NOT NULL,
  spec VARCHAR NOT NULL,
  format VARCHAR NOT NULL,
  options JSON NOT NULL,
  added_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS parts (
  dataset_id INTEGER NOT NULL,
  path VARCHAR NOT NULL,
  size BIGINT NOT NULL,
  mtime_ms DOUBLE NOT NULL,
  samples INTEGER NOT NULL,
  issues INTEGER NOT NULL,
  read_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS samples (
  id BIGINT NOT NULL DEFAULT nextval('sample_id_seq'),
  key VARCHAR NOT NULL,
  source_key VARCHAR NOT NULL,
  dataset_id INTEGER NOT NULL,
  part VARCHAR NOT NULL,
  file VARCHAR NOT NULL,
  member VARCHAR,
  row_index BIGINT,
  image_path VARCHAR,
  caption VARCHAR NOT NULL,
  image_format VARCHAR NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  image_bytes INTEGER NOT NULL,
  metadata JSON NOT NULL
);
-- SHA-256 (hex) of the image file's bytes, for exact de-duplication; NULL in catalogs read before it
-- existed (exact-dedup then asks for the datasets to be read into a new workspace).
ALTER TABLE samples ADD COLUMN IF NOT EXISTS content_hash VARCHAR;
CREATE TABLE IF NOT EXISTS issues (
  dataset_id INTEGER NOT NULL,
  part VARCHAR NOT NULL,
  file VARCHAR NOT NULL,
  key VARCHAR,
  kind VARCHAR NOT NULL,
  severity VARCHAR NOT NULL,
  "where" VARCHAR,
  reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS embedding_shards (
  shard VARCHAR NOT NULL,
  dataset_id INTEGER NOT NULL,
  part VARCHAR NOT NULL,
  rows INTEGER NOT NULL,
  fingerprint VARCHAR NOT NULL,
  seconds DOUBLE NOT NULL,
  done_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS embeddings (
  sample_id BIGINT NOT NULL,
  dataset_id INTEGER NOT NULL,
  part VARCHAR NOT NULL,
  shard VARCHAR NOT NULL,
  "row" INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
  key VARCHAR PRIMARY KEY,
  decision VARCHAR NOT NULL CHECK (decision IN ('accept', 'reject')),
  decided_at VARCHAR NOT NULL
);
CREATE OR REPLACE TABLE _staging_samples (
  seq BIGINT, source_key VARCHAR, file VARCHAR, member VARCHAR, row_index BIGINT, "where" VARCHAR, image_path VARCHAR,
  caption VARCHAR, image_format VARCHAR, width INTEGER, height INTEGER, image_bytes INTEGER, metadata VARCHAR,
  content_hash VARCHAR
);
CREATE OR REPLACE TABLE _staging_embeddings (sample_id BIGINT, "row" INTEGER);
CREATE OR REPLACE TABLE _staging_issues (
  file VARCHAR, key VARCHAR, kind VARCHAR, severity VARCHAR, "where" VARCHAR, reason VARCHAR
);
`;

/** How long opening a catalog waits for another process to release it before giving up. */
export const LOCK_WAIT_MS = 10_000;

/** Another process kept the catalog for longer than the caller was willing to wait. */
export class WorkspaceBusyError extends WorkspaceStateError {
  override name = 'WorkspaceBusyError';
  constructor(
    file: string,
    /** Who holds the file, as far as the operating system tells (e.g. "`curate select` (PID 4711)"). */
    readonly holder: string,
    waitedMs: number,
  ) {
    super(
      file,
      `the workspace is busy: ${holder} holds ${file}; retried for ${formatSeconds(waitedMs)} ` +
        '(run the command again when it has finished)',
    );
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function isLockConflict(err: unknown): boolean {
  return err instanceof Error && /could not set lock|conflicting lock/i.test(err.message);
}

/**
 * DuckDB's lock error reads "… Conflicting lock is held in /usr/bin/node (PID 4711) by user …". Turn
 * that into something a person recognises: the curate command or VS Code window behind the PID.
 */
export function describeLockHolder(message: string): string {
  const m = /conflicting lock is held in (.+?) \(PID (\d+)\)/i.exec(message);
  if (!m) return 'another process';
  const [, program, pid] = m as unknown as [string, string, string];
  let args: string[] = [];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    // Not Linux, or the process is gone: the program path is all there is.
  }
  const cli = args.findIndex((a) => /(^|[\\/])curate(\.js)?$/.test(a));
  if (cli >= 0) {
    const command = ['curate', ...args.slice(cli + 1)].join(' ');
    return `\`${command}\` (PID ${pid})`;
  }
  if (args.some((a) => a.includes('extensionHost'))) return `VS Code (the clipcurate extension, PID ${pid})`;
  return `${path.basename(program)} (PID ${pid})`;
}

/** Create the DuckDB instance, retrying while another process holds the file's lock. */
async function createWhenFree(
  file: string,
  config: Record<string, string> | undefined,
  waitMs: number,
  signal: AbortSignal | undefined,
): Promise<DuckDBInstance> {
  const start = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await DuckDBInstance.create(file, config);
    } catch (err) {
      if (!isLockConflict(err)) throw err;
      const waited = Date.now() - start;
      if (waited >= waitMs)
        throw new WorkspaceBusyError(file, describeLockHolder((err as Error).message), waited);
      // Short first retries (the panel holds the file for a moment at a time), then at most 0.5 s apart.
      await sleep(Math.min(50 * 2 ** attempt, 500, waitMs - waited), undefined, { signal });
    }
  }
}

export interface DatasetRecord {
  id: number;
  name: string;
  spec: string;
  format: string;
  options: string;
}

export interface PartRecord {
  path: string;
  size: number;
  mtimeMs: number;
  samples: number;
  issues: number;
}

export interface EmbeddedShard {
  shard: string;
  datasetId: number;
  part: string;
  /** Catalog id of the sample in each row, in row order. */
  sampleIds: bigint[];
  fingerprint: string;
  seconds: number;
  issues: SampleIssue[];
}

export interface IssueCount {
  kind: IssueKind;
  severity: Severity;
  count: number;
}

export interface CatalogSummary {
  datasets: Array<DatasetRecord & { samples: number; issues: number; parts: number }>;
  samples: number;
  issues: IssueCount[];
}

export class Catalog {
  private constructor(
    readonly file: string,
    private readonly instance: DuckDBInstance,
    readonly connection: DuckDBConnection,
  ) {}

  /**
   * Open (creating when needed) the workspace's catalog. With `readOnly` nothing is created or written
   * (no folder, no schema, DuckDB in READ_ONLY mode), so read-only commands (`status`) work on a full
   * or read-only disk; a workspace without a catalog is then a WorkspaceStateError.
   *
   * DuckDB lets one process write a database file (or several read it). While another process holds
   * the file (the CLI and the VS Code panel share workspaces) this waits and retries for `lockWaitMs`
   * (default {@link LOCK_WAIT_MS}), then throws {@link WorkspaceBusyError} naming the holder.
   */
  static async open(
    workspaceDir: string,
    options: { readOnly?: boolean; lockWaitMs?: number; signal?: AbortSignal } = {},
  ): Promise<Catalog> {
    const file = path.join(workspaceDir, CATALOG_FILE);
    if (options.readOnly && !existsSync(file))
      throw new WorkspaceStateError(file, `no catalog in ${workspaceDir}: run \`curate init\` first`);
    if (!options.readOnly) await mkdir(workspaceDir, { recursive: true });
    const config: Record<string, string> | undefined = options.readOnly
      ? { access_mode: 'READ_ONLY' }
      : undefined;
    const instance = await createWhenFree(file, config, options.lockWaitMs ?? LOCK_WAIT_MS, options.signal);
    const connection = await instance.connect();
    if (!options.readOnly) await connection.run(SCHEMA);
    return new Catalog(file, instance, connection);
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }

  async rows<T>(sql: string, params?: Record<string, DuckDBValue>): Promise<T[]> {
    const reader = await this.connection.runAndReadAll(sql, params);
    return reader.getRowObjectsJS() as T[];
  }

  async findDataset(spec: string, options: string): Promise<DatasetRecord | undefined> {
    const [found] = await this.rows<DatasetRecord>(
      'SELECT id, name, spec, format, options::VARCHAR AS options FROM datasets WHERE spec = $spec AND options::VARCHAR = $options',
      { spec, options },
    );
    return found;
  }

  /** Register a dataset under a name unique in this catalog (`name`, `name-2`, …). */
  async createDataset(
    suggestedName: string,
    spec: string,
    format: string,
    options: string,
  ): Promise<DatasetRecord> {
    const taken = new Set(
      (await this.rows<{ name: string }>('SELECT name FROM datasets')).map((r) => r.name),
    );
    let name = suggestedName;
    for (let n = 2; taken.has(name); n++) name = `${suggestedName}-${n}`;
    const [created] = await this.rows<DatasetRecord>(
      `INSERT INTO datasets (name, spec, format, options) VALUES ($name, $spec, $format, $options)
       RETURNING id, name, spec, format, options::VARCHAR AS options`,
      { name, spec, format, options },
    );
    return created!;
  }

  async finishedParts(datasetId: number): Promise<Map<string, PartRecord>> {
    const rows = await this.rows<PartRecord>(
      'SELECT path, size, mtime_ms AS "mtimeMs", samples, issues FROM parts WHERE dataset_id = $id',
      { id: datasetId },
    );
    return new Map(rows.map((r) => [r.path, { ...r, size: Number(r.size) }]));
  }

  /** Drop everything recorded for a part (or, with `part = ''`, the dataset-level issues). */
  async forgetPart(datasetId: number, part: string): Promise<void> {
    await this.transaction(() => this.deletePartRows(datasetId, part));
  }

  /** Delete a part's samples, issues, done-mark and (now stale) embeddings; call inside a transaction. */
  async deletePartRows(datasetId: number, part: string): Promise<void> {
    for (const [table, column] of [
      ['samples', 'part'],
      ['issues', 'part'],
      ['parts', 'path'],
      ['embedding_shards', 'part'],
      ['embeddings', 'part'],
    ] as const) {
      await this.connection.run(`DELETE FROM ${table} WHERE dataset_id = $id AND ${column} = $part`, {
        id: datasetId,
        part,
      });
    }
  }

  async recordDatasetIssues(datasetId: number, issues: SampleIssue[]): Promise<void> {
    await this.forgetPart(datasetId, '');
    for (const i of issues) {
      await this.connection.run(
        `INSERT INTO issues VALUES ($id, '', $file, $key, $kind, $severity, $where, $reason)`,
        {
          id: datasetId,
          file: i.file,
          key: i.key ?? null,
          kind: i.kind,
          severity: i.severity,
          where: i.where ?? null,
          reason: i.reason,
        },
      );
    }
  }

  async beginPart(): Promise<PartWriter> {
    await this.connection.run('DELETE FROM _staging_samples; DELETE FROM _staging_issues;');
    return new PartWriter(
      this,
      await this.connection.createAppender('_staging_samples'),
      await this.connection.createAppender('_staging_issues'),
    );
  }

  async transaction(work: () => Promise<void>): Promise<void> {
    await this.connection.run('BEGIN TRANSACTION');
    try {
      await work();
      await this.connection.run('COMMIT');
    } catch (err) {
      await this.connection.run('ROLLBACK');
      throw err;
    }
  }

  /**
   * Record a written embedding shard: which sample each row holds, and the images that could not be
   * decoded. Replaces whatever an earlier, interrupted run recorded for the same shard.
   */
  async recordEmbeddedShard(shard: EmbeddedShard): Promise<void> {
    const c = this.connection;
    await c.run('DELETE FROM _staging_embeddings');
    const appender = await c.createAppender('_staging_embeddings');
    shard.sampleIds.forEach((id, row) => {
      appender.appendBigInt(id);
      appender.appendInteger(row);
      appender.endRow();
    });
    appender.closeSync();
    const key = { id: shard.datasetId, part: shard.part, shard: shard.shard };
    await this.transaction(async () => {
      await c.run('DELETE FROM embeddings WHERE shard = $shard', { shard: shard.shard });
      await c.run('DELETE FROM embedding_shards WHERE shard = $shard', { shard: shard.shard });
      await c.run(
        `DELETE FROM issues WHERE dataset_id = $id AND part = $part AND kind IN ('undecodable-image', 'non-finite-embedding')`,
        {
          id: shard.datasetId,
          part: shard.part,
        },
      );
      await c.run(
        `INSERT INTO embeddings SELECT sample_id, $id, $part, $shard, "row" FROM _staging_embeddings`,
        key,
      );
      for (const i of shard.issues) {
        await c.run(`INSERT INTO issues VALUES ($id, $part, $file, $key, $kind, 'error', NULL, $reason)`, {
          id: shard.datasetId,
          part: shard.part,
          file: i.file,
          key: i.key ?? null,
          kind: i.kind,
          reason: i.reason,
        });
      }
      await c.run(
        `INSERT INTO embedding_shards (shard, dataset_id, part, rows, fingerprint, seconds)
         VALUES ($shard, $id, $part, $rows, $fp, $seconds)`,
        { ...key, rows: shard.sampleIds.length, fp: shard.fingerprint, seconds: shard.seconds },
      );
    });
  }

  async summary(): Promise<CatalogSummary> {
    const datasets = await this.rows<CatalogSummary['datasets'][number]>(`
      SELECT d.id, d.name, d.spec, d.format, d.options::VARCHAR AS options,
        (SELECT count(*) FROM samples s WHERE s.dataset_id = d.id)::INTEGER AS samples,
        (SELECT count(*) FROM issues i WHERE i.dataset_id = d.id)::INTEGER AS issues,
        (SELECT count(*) FROM parts p WHERE p.dataset_id = d.id)::INTEGER AS parts
      FROM datasets d ORDER BY d.id`);
    const [{ n } = { n: 0 }] = await this.rows<{ n: number }>('SELECT count(*)::INTEGER AS n FROM samples');
    const issues = await this.rows<IssueCount>(
      'SELECT kind, severity, count(*)::INTEGER AS count FROM issues GROUP BY ALL ORDER BY count DESC, kind',
    );
    return { datasets, samples: n, issues };
  }
}

/**
 * Collects one part's samples and issues in staging tables, then merges them into the catalog in one
 * transaction: duplicate keys within the dataset become `duplicate-key` issues (the first sample keeps
 * the key), and keys already used by another dataset are namespaced as `<dataset name>/<key>`.
 */
export class PartWriter {
  private seq = 0;

  constructor(
    private readonly catalog: Catalog,
    private readonly samples: DuckDBAppender,
    private readonly issues: DuckDBAppender,
  ) {}

  addSample(sample: Sample, image: ImageInfo, where: string | undefined, contentHash: string): void {
    const a = this.samples;
    const loc = sample.location;
    a.appendBigInt(BigInt(this.seq++));
    a.appendVarchar(sample.key);
    a.appendVarchar(loc.file);
    appendOptional(a, loc.member);
    if (loc.row === undefined) a.appendNull();
    else a.appendBigInt(BigInt(loc.row));
    appendOptional(a, where);
    appendOptional(a, loc.imagePath);
    a.appendVarchar(sample.caption);
    a.appendVarchar(image.format);
    a.appendInteger(image.width);
    a.appendInteger(image.height);
    a.appendInteger(image.bytes);
    a.appendVarchar(JSON.stringify(sample.metadata));
    a.appendVarchar(contentHash);
    a.endRow();
  }

  addIssue(i: SampleIssue): void {
    const a = this.issues;
    a.appendVarchar(i.file);
    appendOptional(a, i.key);
    a.appendVarchar(i.kind);
    a.appendVarchar(i.severity);
    appendOptional(a, i.where);
    a.appendVarchar(i.reason);
    a.endRow();
  }

  /** Merge the staged part into the catalog and mark it done. Returns what was kept. */
  async commit(dataset: DatasetRecord, part: DatasetPart): Promise<{ samples: number; issues: number }> {
    this.samples.closeSync();
    this.issues.closeSync();
    const c = this.catalog.connection;
    const params = { id: dataset.id, part: part.path, name: dataset.name };
    let counts = { samples: 0, issues: 0 };
    await this.catalog.transaction(async () => {
      await this.catalog.deletePartRows(dataset.id, part.path);
      await c.run(
        `CREATE OR REPLACE TEMP TABLE _ranked AS
         SELECT s.*,
           row_number() OVER (PARTITION BY s.source_key ORDER BY s.seq) > 1
             OR s.source_key IN (SELECT source_key FROM samples WHERE dataset_id = $id) AS duplicate,
           s.source_key IN (SELECT key FROM samples WHERE dataset_id <> $id) AS clashes
         FROM _staging_samples s`,
        { id: dataset.id },
      );
      await c.run(
        `INSERT INTO issues SELECT $id, $part, file, key, kind, severity, "where", reason FROM _staging_issues`,
        { id: dataset.id, part: part.path },
      );
      await c.run(
        `INSERT INTO issues
         SELECT $id, $part, file, source_key, 'duplicate-key', 'error', "where",
           'key ' || source_key || ' was already used by an earlier sample of this dataset; this one is skipped'
         FROM _ranked WHERE duplicate ORDER BY seq`,
        { id: dataset.id, part: part.path },
      );
      await c.run(
        `INSERT INTO samples (key, source_key, dataset_id, part, file, member, row_index, image_path, caption,
                              image_format, width, height, image_bytes, metadata, content_hash)
         SELECT CASE WHEN clashes THEN $name || '/' || source_key ELSE source_key END, source_key, $id, $part,
                file, member, row_index, image_path, caption, image_format, width, height, image_bytes, metadata,
                content_hash
         FROM _ranked WHERE NOT duplicate ORDER BY seq`,
        params,
      );
      const [row] = await this.catalog.rows<{ samples: number; issues: number }>(
        `SELECT (SELECT count(*) FROM samples WHERE dataset_id = $id AND part = $part)::INTEGER AS samples,
                (SELECT count(*) FROM issues WHERE dataset_id = $id AND part = $part)::INTEGER AS issues`,
        { id: dataset.id, part: part.path },
      );
      counts = row!;
      await c.run(
        `INSERT INTO parts (dataset_id, path, size, mtime_ms, samples, issues)
                   VALUES ($id, $part, $size, $mtime, $samples, $issues)`,
        {
          id: dataset.id,
          part: part.path,
          size: part.size,
          mtime: part.mtimeMs,
          samples: counts.samples,
          issues: counts.issues,
        },
      );
    });
    // Write the part's rows to the database file now, so memory holds one part, not the whole catalog.
    await c.run('DROP TABLE IF EXISTS _ranked; CHECKPOINT');
    return counts;
  }

  /** Abandon the staged rows (the part stays unfinished and is read again next time). */
  discard(): void {
    this.samples.closeSync();
    this.issues.closeSync();
  }
}

function appendOptional(a: DuckDBAppender, value: string | undefined): void {
  if (value === undefined) a.appendNull();
  else a.appendVarchar(value);
}
