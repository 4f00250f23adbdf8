/**
 * Export a saved selection (issue 7, "Export"): WebDataset shards with the original image bytes, a
 * JSONL / CSV / parquet manifest pointing at the sources, or a plain key list; always with the
 * selection's weights, its schedule (if any) and provenance.json.
 *
 *   webdataset  selection-000000.tar, … (NAME.<ext>, NAME.txt, NAME.json per sample), weights.txt
 *   jsonl       manifest.jsonl (weights in the manifest)
 *   csv         manifest.csv (RFC 4180; weights in the manifest)
 *   parquet     manifest.parquet (weights in the manifest)
 *   keys        keys.txt, weights.txt
 *   all         schedule.jsonl (copied, when the selection has one), provenance.json
 *
 * Samples whose source is gone or changed since `curate init` are skipped and reported; the rest are
 * exported. Files are staged inside `out` and moved into place at the end, so `out` never holds a
 * half-written file. The same selection and format give byte-identical files (provenance.json differs
 * only in `export.exportedAt` and `export.seconds`).
 */
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { dataMovement } from '../../select/nessa/shards.js';
import type { Catalog } from '../catalog.js';
import { readSchedule } from '../schedule.js';
import {
  datasetFingerprint,
  loadSelection,
  selectionDir,
  toolVersion,
  type StoredSelection,
} from '../selections.js';
import { writeKeys, writeManifest, writeWeights } from './manifest.js';
import { MAX_NAME } from './names.js';
import { ExportFolder, PROVENANCE_FILE } from './output.js';
import { reviewsByKey } from '../reviews.js';
import { checkSources, normaliseWeights, planPicks, withIdTable, type Pick } from './plan.js';
import { ByteStore, collectArchives } from './sources.js';
import {
  EXPORT_FORMATS,
  ExportInputError,
  type ExportedFile,
  type ExportFormat,
  type ExportOptions,
  type ExportReport,
} from './types.js';
import { DEFAULT_SHARD_SIZE, writeShards } from './webdataset.js';

export * from './types.js';
export { exportName, MAX_NAME } from './names.js';
export { MANIFEST_COLUMNS } from './manifest.js';
export { DEFAULT_SHARD_SIZE, shardName } from './webdataset.js';

export const EXPORT_FILE_FORMAT = 'clipcurate-export';
export const EXPORT_FILE_VERSION = 1;
const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;

export async function exportSelection(
  catalog: Catalog,
  workspace: string,
  name: string,
  options: ExportOptions,
): Promise<ExportReport> {
  const started = performance.now();
  const exportedAt = new Date().toISOString();
  const { format, signal } = options;
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    throw new ExportInputError(
      `unknown export format '${String(format)}' (one of ${EXPORT_FORMATS.join(', ')})`,
    );
  const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
  if (!Number.isInteger(shardSize) || shardSize < 1)
    throw new ExportInputError(`shard size ${shardSize} must be a whole number ≥ 1`);
  const stored = await loadSelection(workspace, name);
  const request =
    `curate export --selection ${stored.name} --format ${format}` +
    (format === 'webdataset' ? ` --shard-size ${shardSize}` : '');
  const folder = await ExportFolder.open(options.out, options.overwrite ?? false, request);
  const warnings: string[] = [];
  try {
    await folder.refuseClashes((n) => writesName(format, n, !!stored.files.schedule));
    const current = await datasetFingerprint(catalog);
    if (current.fingerprint !== stored.provenance.dataset.fingerprint)
      warnings.push(
        `the catalog changed since selection '${name}' was made (dataset fingerprint ` +
          `${stored.provenance.dataset.fingerprint} then, ${current.fingerprint} now)`,
      );

    const planned = await planPicks(catalog, stored, await reviewsByKey(catalog));
    const review = planned.review;
    const skipped = planned.skipped;
    let picks = await checkSources(planned.picks, skipped, signal);
    const files: ExportedFile[] = [];
    let sourceRead = 0;
    let payloadRead = 0;
    let payloadWritten = 0;
    let weightsIn: string;
    let keysRenamed: Array<{ key: string; name: string }> = [];

    if (format === 'webdataset') {
      const store = new ByteStore(
        path.join(folder.staging, '.spool'),
        options.memoryBytes ?? DEFAULT_MEMORY_BYTES,
      );
      try {
        const collected = await collectArchives(picks, store, skipped, {
          ...(signal ? { signal } : {}),
          onProgress: (d, t) => options.onProgress?.(d, t, 'collect'),
        });
        sourceRead += collected.sourceRead;
        const accounted = new Set(skipped.map((s) => s.rank));
        picks = picks.filter((p) => {
          if (p.source.kind === 'file' || store.has(p.rank)) return true;
          // Every pick is written or listed as skipped, with a reason: never dropped silently.
          if (!accounted.has(p.rank))
            skipped.push({
              rank: p.rank,
              key: p.key,
              sampleId: p.sampleId,
              file: p.source.file,
              reason: `the image of ${p.key} was not found in ${p.source.file}`,
            });
          return false;
        });
        normaliseWeights(picks);
        const shards = await writeShards(folder, picks, store, skipped, {
          shardSize,
          selection: { name: stored.name, method: stored.method },
          ...(signal ? { signal } : {}),
          onProgress: (d, t) => options.onProgress?.(d, t, 'write'),
        });
        files.push(...shards.files);
        picks = shards.written;
        sourceRead += shards.sourceRead;
        payloadRead = shards.payloadRead;
        payloadWritten = shards.payloadWritten;
      } finally {
        await store.close();
      }
      files.push(await writeWeights(folder, picks));
      weightsIn = 'weights.txt (one mean-1 weight a line, in shard order) and each NAME.json';
    } else {
      normaliseWeights(picks);
      options.onProgress?.(0, picks.length, 'write');
      if (format === 'keys') {
        const keys = await writeKeys(folder, picks);
        files.push(keys.file, await writeWeights(folder, picks));
        keysRenamed = keys.renamed;
        weightsIn = 'weights.txt (one mean-1 weight a line, aligned with keys.txt)';
      } else {
        files.push(await writeManifest(catalog, folder, format, picks));
        weightsIn = `manifest.${format} columns weight (mean-1) and weight_raw (γ)`;
      }
      options.onProgress?.(picks.length, picks.length, 'write');
    }

    const schedule = await copySchedule(folder, workspace, stored, picks);
    if (schedule) {
      files.push(schedule.file);
      if (schedule.keysOutside > 0)
        warnings.push(
          `schedule.jsonl names ${schedule.keysOutside} keys that are not in this export ` +
            '(dynamic methods train on samples beyond their static subset): export those too, or the whole pool',
        );
    }
    skipped.sort((a, b) => a.rank - b.rank);
    if (skipped.length > 0)
      warnings.push(`${skipped.length} of ${stored.sampleIds.length} picks were skipped (see skipped)`);

    const movement = await tier2(catalog, stored, picks);
    const weighted = stored.weights !== undefined;
    const renamedNames = picks.filter((p) => p.name !== p.key).length;
    const written = files.reduce((a, f) => a + f.bytes, 0);
    const bytes = { sourceRead, payloadRead, payloadWritten, written, ...movement };
    const provenance = {
      format: EXPORT_FILE_FORMAT,
      version: EXPORT_FILE_VERSION,
      selection: {
        name: stored.name,
        method: stored.method,
        params: stored.params,
        seed: stored.seed,
        budget: stored.budget,
        pool: stored.pool,
        picks: stored.sampleIds.length,
        files: stored.files,
        provenance: stored.provenance,
      },
      export: {
        format,
        tool: await toolVersion(),
        exportedAt,
        seconds: (performance.now() - started) / 1000,
        ...(format === 'webdataset' ? { shardSize } : {}),
        samples: picks.length,
        files,
        weights: {
          in: weightsIn,
          weighted,
          rule: weighted
            ? 'weight = γ·n/Σγ over the n exported samples (mean 1); weight_raw = γ, the pool samples a pick stands for'
            : 'the selection has no weights: every weight is 1',
          sumRaw: picks.reduce((a, p) => a + p.weightRaw, 0),
        },
        names: {
          rule:
            'export name (WebDataset __key__, manifest column name) = the key with every character other than ' +
            'A-Z a-z 0-9 _ - written as %XX (UTF-8), so decodeURIComponent(name) is the key; names over ' +
            `${MAX_NAME} characters end in ~ and a hash of the key`,
          renamed: renamedNames,
          ...(keysRenamed.length ? { renamedInKeysTxt: keysRenamed } : {}),
        },
        review: {
          rule: 'manual review (curate review, the VS Code panel): rejected picks left out, accepted samples added after the picks with γ = 1',
          ...review,
        },
        schedule: schedule ? { file: 'schedule.jsonl', keysOutsideExport: schedule.keysOutside } : null,
        bytes,
        catalog: { fingerprint: current.fingerprint },
        skipped,
        warnings,
      },
    };
    const text = JSON.stringify(provenance, null, 2) + '\n';
    const provenanceFile = await folder.writeFile(PROVENANCE_FILE, text);
    signal?.throwIfAborted();
    await folder.commit([...files, provenanceFile]);
    return {
      selection: stored.name,
      format,
      out: folder.out,
      picks: stored.sampleIds.length,
      samples: picks.length,
      files: [...files, provenanceFile],
      skipped,
      review,
      bytes,
      warnings,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await folder.dispose();
  }
}

/** Whether an export in `format` may write a file called `name` (for refusing clashes up front). */
function writesName(format: ExportFormat, name: string, schedule: boolean): boolean {
  if (name === PROVENANCE_FILE || (schedule && name === 'schedule.jsonl')) return true;
  switch (format) {
    case 'webdataset':
      return name === 'weights.txt' || /^selection-\d{6,}\.tar$/.test(name);
    case 'keys':
      return name === 'keys.txt' || name === 'weights.txt';
    default:
      return name === `manifest.${format}`;
  }
}

async function copySchedule(
  folder: ExportFolder,
  workspace: string,
  stored: StoredSelection,
  picks: Pick[],
): Promise<{ file: ExportedFile; keysOutside: number } | undefined> {
  if (!stored.files.schedule) return undefined;
  const source = path.join(selectionDir(workspace, stored.name), stored.files.schedule);
  const { rounds } = await readSchedule(source);
  const exported = new Set(picks.map((p) => p.key));
  const outside = new Set<string>();
  for (const r of rounds) for (const k of r.keys) if (!exported.has(k)) outside.add(k);
  await copyFile(source, folder.stagedPath('schedule.jsonl'));
  return { file: { ...(await folder.describe('schedule.jsonl')) }, keysOutside: outside.size };
}

/** Tier-2 (image + caption) bytes of the exported picks and of the selection's pool (nessa.md N1). */
async function tier2(
  catalog: Catalog,
  stored: StoredSelection & { poolIds?: number[] },
  picks: Pick[],
): Promise<{ tier2Selected: number | null; tier2Pool: number | null; savingFactor: number | null }> {
  const poolIds = stored.poolIds;
  if (!poolIds?.length) {
    const selected = picks.reduce((a, p) => a + p.row.image_bytes + Buffer.byteLength(p.row.caption), 0);
    return { tier2Selected: selected, tier2Pool: null, savingFactor: null };
  }
  const rows = await withIdTable(catalog, poolIds, (table) =>
    catalog.rows<{ pos: number; bytes: number | bigint | null }>(
      `SELECT t.pos, s.image_bytes + strlen(s.caption) AS bytes
       FROM ${table} t LEFT JOIN samples s ON s.id = t.id ORDER BY t.pos`,
    ),
  );
  const payloadBytes = new Float64Array(poolIds.length);
  for (const r of rows) payloadBytes[r.pos] = Number(r.bytes ?? 0);
  const position = new Map(poolIds.map((id, i) => [id, i]));
  const positions = picks.map((p) => position.get(p.sampleId)).filter((i): i is number => i !== undefined);
  // Export moves no embeddings: tier 1 is zero here, so `moved` is the tier-2 bytes of the picks.
  const m = dataMovement({ n: poolIds.length, dim: 0, picks: positions, payloadBytes });
  return {
    tier2Selected: m.tier2Selected,
    tier2Pool: m.tier2Pool,
    savingFactor: m.tier2Selected ? m.savingFactor : null,
  };
}
