/**
 * Export a saved selection (issue 7, "Export"): WebDataset shards with the original image bytes, a
 * JSONL / CSV / parquet manifest pointing at the sources, or a plain key list; always with the
 * selection's weights, its schedule (if any) and provenance.json.
 *
 *   webdataset  selection-000000.tar, … (per sample: a tar source's members, or NAME.<ext> + NAME.txt;
 *               and NAME.curate.json), weights.txt
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
import { readSchedule, scheduleKeys, type ScheduleLine } from '../schedule.js';
import {
  datasetFingerprint,
  loadPoolIds,
  loadSelection,
  poolPositions,
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
import { locateTarMembers } from './tarIndex.js';
import {
  EXPORT_FORMATS,
  ExportInputError,
  type ExportedFile,
  type ExportFormat,
  type ExportOptions,
  type ExportReport,
  type ExportSchedule,
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
    await folder.refuseClashes(
      (n) => writesName(format, n, !!stored.files.schedule) || syntheticFiles(stored).includes(n),
    );
    const current = await datasetFingerprint(catalog);
    if (current.fingerprint !== stored.provenance.dataset.fingerprint)
      warnings.push(
        `the catalog changed since selection '${name}' was made (dataset fingerprint ` +
          `${stored.provenance.dataset.fingerprint} then, ${current.fingerprint} now)`,
      );

    // Dynamic selections train on every round's keys, not only the static picks: export their union.
    const rounds = await readStoredSchedule(workspace, stored);
    const union = rounds ? scheduleKeys(rounds) : [];
    const planned = await planPicks(catalog, stored, await reviewsByKey(catalog), union);
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
      weightsIn = 'weights.txt (one mean-1 weight a line, in shard order) and each NAME.curate.json';
    } else {
      // Manifests carry each tar member's offset: index the shards' headers (tarIndex.ts).
      if (format !== 'keys') picks = await locateTarMembers(picks, skipped, signal);
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

    const schedule = rounds
      ? await copySchedule(folder, workspace, stored, rounds, picks, format)
      : undefined;
    if (schedule) {
      files.push(schedule.file);
      if (schedule.facts.keysOutsideExport > 0)
        warnings.push(
          `schedule.jsonl names ${schedule.facts.keysOutsideExport} keys that are not in this export ` +
            '(skipped or rejected in review, see provenance.json): a trainer leaves them out of their rounds',
        );
    }
    // A distillation's learned vectors (pdd-synth) are part of what it produced: they travel with the picks.
    for (const file of syntheticFiles(stored)) {
      await copyFile(path.join(selectionDir(workspace, stored.name), file), folder.stagedPath(file));
      files.push(await folder.describe(file));
    }
    skipped.sort((a, b) => a.rank - b.rank);
    if (skipped.length > 0)
      warnings.push(
        `${skipped.length} of ${stored.sampleIds.length + extraKeys(stored, union)} ${union.length ? 'picks and schedule keys' : 'picks'} ` +
          'were skipped (see skipped)',
      );

    const movement = await tier2(catalog, await loadPoolIds(workspace, stored), picks);
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
        ...(stored.synthetic ? { synthetic: stored.synthetic } : {}),
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
            ? 'weight = γ·n/Σγ over the n exported samples with γ > 0 (mean 1); weight_raw = γ, the pool samples a pick ' +
              'stands for (0 for samples only a dynamic schedule uses)'
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
        schedule: schedule?.facts ?? null,
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
      ...(schedule ? { schedule: schedule.facts } : {}),
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

/** synthetic.npy and its label and stage files, for a selection that has learned vectors. */
function syntheticFiles(stored: StoredSelection): string[] {
  const v = stored.synthetic;
  return v && stored.files.synthetic ? [stored.files.synthetic, v.labels, v.stages] : [];
}

/** The selection's schedule rounds, or undefined for a static selection. */
async function readStoredSchedule(
  workspace: string,
  stored: StoredSelection,
): Promise<ScheduleLine[] | undefined> {
  if (!stored.files.schedule) return undefined;
  return (await readSchedule(path.join(selectionDir(workspace, stored.name), stored.files.schedule))).rounds;
}

/** Schedule keys that are not static picks: what a dynamic export adds. */
function extraKeys(stored: StoredSelection, union: readonly string[]): number {
  const picked = new Set(stored.keys);
  return union.filter((k) => !picked.has(k)).length;
}

/** Where the per-sample data a trainer joins schedule keys with lives, per format. */
const ROWS_IN: Record<ExportFormat, string> = {
  webdataset: 'the shards',
  jsonl: 'manifest.jsonl',
  csv: 'manifest.csv',
  parquet: 'manifest.parquet',
  keys: 'keys.txt',
};

async function copySchedule(
  folder: ExportFolder,
  workspace: string,
  stored: StoredSelection,
  rounds: readonly ScheduleLine[],
  picks: Pick[],
  format: ExportFormat,
): Promise<{ file: ExportedFile; facts: ExportSchedule }> {
  const source = path.join(selectionDir(workspace, stored.name), stored.files.schedule!);
  const exported = new Set(picks.map((p) => p.key));
  const union = scheduleKeys(rounds);
  const outside = union.filter((k) => !exported.has(k)).length;
  await copyFile(source, folder.stagedPath('schedule.jsonl'));
  const facts: ExportSchedule = {
    file: 'schedule.jsonl',
    rounds: rounds.length,
    keys: union.length,
    samples: picks.length,
    scheduleOnly: picks.filter((p) => p.rank >= stored.sampleIds.length && p.weightRaw === 0).length,
    keysOutsideExport: outside,
    summary:
      `dynamic selection: exported the union of ${rounds.length} rounds' keys (${union.length}) and the ` +
      `${stored.sampleIds.length} static picks, ${picks.length} samples; schedule.jsonl beside ${ROWS_IN[format]} ` +
      '(per-round keys and weights: docs/schedules.md)',
    rule:
      'the export holds the static picks, then every schedule key that is not a pick (weight_raw 0, weight 0: ' +
      'not part of the static subset), then accepted samples; a trainer takes each round and its per-position ' +
      'weights from schedule.jsonl and trains on the whole export with weight 1 before the first round starts',
  };
  return { file: { ...(await folder.describe('schedule.jsonl')) }, facts };
}

/** Tier-2 (image + caption) bytes of the exported picks and of the selection's pool (nessa.md N1). */
async function tier2(
  catalog: Catalog,
  poolIds: Float64Array,
  picks: Pick[],
): Promise<{ tier2Selected: number | null; tier2Pool: number | null; savingFactor: number | null }> {
  if (!poolIds.length) {
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
  const position = poolPositions(
    poolIds,
    picks.map((p) => p.sampleId),
  );
  const positions = picks.map((p) => position.get(p.sampleId)).filter((i): i is number => i !== undefined);
  // Export moves no embeddings: tier 1 is zero here, so `moved` is the tier-2 bytes of the picks.
  const m = dataMovement({ n: poolIds.length, dim: 0, picks: positions, payloadBytes });
  return {
    tier2Selected: m.tier2Selected,
    tier2Pool: m.tier2Pool,
    savingFactor: m.tier2Selected ? m.savingFactor : null,
  };
}
