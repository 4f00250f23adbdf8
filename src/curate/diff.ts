/**
 * The difference of two saved selections, by catalog sample id (so selections over different pools,
 * e.g. one chained from a filter, compare too): what both kept, what only one kept and why each method
 * says it kept or dropped those (reasons.jsonl), and where the dataset's metadata carries ground truth
 * (`caption_kind`, `dup_of`, `label`, as in the CIFAR caption shards) how the two differences break down.
 */
import type { Catalog } from './catalog.js';
import { loadReasons, loadSelection, type SavedReason } from './selections.js';

/** Metadata fields read as ground truth when the dataset has them. */
export const GROUND_TRUTH_FIELDS = ['caption_kind', 'dup_of', 'label'] as const;

export interface DiffSide {
  name: string;
  method: string;
  kept: number;
}

export interface DiffItem {
  /** Catalog sample id. */
  id: number;
  key: string;
  caption: string;
  /** What selection A's method recorded for this sample (kept or dropped), null when nothing. */
  reasonA: string | null;
  reasonB: string | null;
  /** Ground-truth fields the dataset's metadata has (absent fields have no key); null = no value here. */
  groundTruth: Record<string, string | null>;
}

export interface DiffTruth {
  field: string;
  /** Count per value among the samples only A kept (`dup_of`: "duplicate" / "not a duplicate"). */
  onlyA: Record<string, number>;
  onlyB: Record<string, number>;
}

export interface SelectionDiff {
  a: DiffSide;
  b: DiffSide;
  /** Samples both selections kept. */
  both: number;
  /** Samples only A kept, in A's pick order. */
  onlyA: DiffItem[];
  /** Samples only B kept, in B's pick order. */
  onlyB: DiffItem[];
  /** One entry per ground-truth field the metadata has; empty when it has none. */
  truth: DiffTruth[];
}

export async function diffSelections(
  catalog: Catalog,
  workspace: string,
  a: string,
  b: string,
): Promise<SelectionDiff> {
  // Both names are checked before any work: an unknown one is an error naming it.
  const [selA, selB] = [await loadSelection(workspace, a), await loadSelection(workspace, b)];
  const [reasonsA, reasonsB] = [await loadReasons(workspace, a), await loadReasons(workspace, b)];
  const inA = new Set(selA.sampleIds);
  const inB = new Set(selB.sampleIds);
  const onlyAIds = selA.sampleIds.filter((id) => !inB.has(id));
  const onlyBIds = selB.sampleIds.filter((id) => !inA.has(id));
  const fields = await groundTruthFields(catalog);
  const facts = await sampleFacts(catalog, [...onlyAIds, ...onlyBIds], fields);
  const item = (id: number): DiffItem => {
    const f = facts.get(id);
    if (!f) throw new Error(`sample ${id} of a saved selection is no longer in the catalog`);
    return {
      id,
      key: f.key,
      caption: f.caption,
      reasonA: reasonText(reasonsA, id),
      reasonB: reasonText(reasonsB, id),
      groundTruth: f.groundTruth,
    };
  };
  const onlyA = onlyAIds.map(item);
  const onlyB = onlyBIds.map(item);
  return {
    a: { name: a, method: selA.method, kept: selA.sampleIds.length },
    b: { name: b, method: selB.method, kept: selB.sampleIds.length },
    both: selA.sampleIds.length - onlyAIds.length,
    onlyA,
    onlyB,
    truth: fields.map((field) => ({ field, onlyA: tally(onlyA, field), onlyB: tally(onlyB, field) })),
  };
}

function reasonText(reasons: Map<number, SavedReason>, id: number): string | null {
  return reasons.get(id)?.reason ?? null;
}

/** The ground-truth fields that some sample's metadata has (as a key, even with a null value). */
async function groundTruthFields(catalog: Catalog): Promise<string[]> {
  const [row] = await catalog.rows<Record<string, boolean | null>>(
    `SELECT ${GROUND_TRUTH_FIELDS.map((f) => `bool_or(json_exists(metadata, '$.${f}')) AS "${f}"`).join(', ')}
     FROM samples`,
  );
  return GROUND_TRUTH_FIELDS.filter((f) => row?.[f] === true);
}

interface SampleFacts {
  key: string;
  caption: string;
  groundTruth: Record<string, string | null>;
}

async function sampleFacts(
  catalog: Catalog,
  ids: number[],
  fields: readonly string[],
): Promise<Map<number, SampleFacts>> {
  if (ids.length === 0) return new Map();
  // Field names are from GROUND_TRUTH_FIELDS, never from the user.
  const columns = fields.map((f) => `, metadata->>'${f}' AS "gt_${f}"`).join('');
  const rows = await catalog.rows<Record<string, unknown> & { id: bigint; key: string; caption: string }>(
    `SELECT id, key, caption${columns} FROM samples
     WHERE id IN (SELECT unnest(string_split($ids, ','))::BIGINT)`,
    { ids: ids.join(',') },
  );
  return new Map(
    rows.map((r) => [
      Number(r.id),
      {
        key: r.key,
        caption: r.caption ?? '',
        groundTruth: Object.fromEntries(fields.map((f) => [f, (r[`gt_${f}`] as string | null) ?? null])),
      },
    ]),
  );
}

/** Count per value of one ground-truth field; `dup_of` counts duplicates, not the originals they copy. */
function tally(items: DiffItem[], field: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const it of items) {
    const v = it.groundTruth[field] ?? null;
    const bucket = field === 'dup_of' ? (v === null ? 'not a duplicate' : 'duplicate') : (v ?? '(none)');
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  return counts;
}
