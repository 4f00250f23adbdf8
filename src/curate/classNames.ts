/**
 * Class names for zero-shot latent classes (ClipCov, SAS: src/select/latentClasses.ts) and the zero-shot
 * evaluation of held-out samples: `--class-names a,b,c | @FILE | field:NAME` parsed and checked, each
 * name embedded with a fixed ensemble of CLIP-style prompt templates by the encoder the workspace was
 * embedded with, and per-sample class indices read from a metadata field of names.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { OFFLINE_ENCODER_NAME } from '../embed/encoders/offline/index.js';
import { isOfflineSpec, loadClipEncoder } from '../embed/encoders/registry.js';
import { l2NormalizeRows, type Encoder } from '../embed/encoders/types.js';
import { EmbeddingStore } from '../embed/store.js';
import { SelectionInputError } from '../select/contract.js';
import type { Catalog } from './catalog.js';
import { embeddingsDir } from './embed.js';
import { offlineEncoderFor } from './offline.js';

/** Where the class names come from, as parsed from `--class-names` (or `classNames` in the config). */
export type ClassNamesSpec =
  | { kind: 'list'; names: string[] }
  /** `@FILE`: read when parsed, so a missing or bad file fails before any work. */
  | { kind: 'file'; file: string; names: string[] }
  /** `field:NAME`: the distinct values of that metadata field, read from the catalog. */
  | { kind: 'field'; field: string };

/** The request fields of select and compare that ask for class prompts. */
export interface ClassNamesRequest {
  classNames?: ClassNamesSpec;
  /**
   * The encoder the workspace was embedded with (`--encoder` spec: a model folder or id, or `default`
   * for the workspace's offline encoder); needed to embed the class names. Default: `default`.
   */
  encoder?: string;
}

/** Class prompts ready for `SelectInput.classPrompts`, plus the field the names came from (if any). */
export interface ResolvedClassNames {
  names: string[];
  /** K × dim, unit rows, in the workspace's embedding space. */
  embeddings: Float32Array;
  /** With `field:NAME`: NAME, whose values give each sample's true class ({@link labelsFromNameField}). */
  labelField?: string;
}

/** More classes than this is almost surely a field of free text (captions, keys), not of class names. */
export const MAX_CLASS_NAMES = 5000;

/**
 * The prompt ensemble every class name is embedded with (`{}` = the name). Twelve of the templates of
 * OpenAI CLIP's zero-shot evaluation: the nine "a … photo of a {}." forms of its CIFAR-10 ensemble
 * (data/prompts.md) and three photo forms of its 80-template ImageNet ensemble (close-up, cropped,
 * bright). Only photo templates: curated pools are photos with web captions, so the ImageNet set's
 * rendition forms (origami, tattoo, video game, …) would pull the class means away from them; the
 * CIFAR set's "the {}" twins are left out as they embed almost like their "a {}" forms.
 */
export const PROMPT_TEMPLATES: readonly string[] = [
  'a photo of a {}.',
  'a blurry photo of a {}.',
  'a black and white photo of a {}.',
  'a low contrast photo of a {}.',
  'a high contrast photo of a {}.',
  'a bad photo of a {}.',
  'a good photo of a {}.',
  'a photo of a small {}.',
  'a photo of a big {}.',
  'a close-up photo of a {}.',
  'a cropped photo of a {}.',
  'a bright photo of a {}.',
];

/**
 * `a,b,c` (a comma list), `@FILE` (one name per line; `#` starts a comment, blank lines are skipped) or
 * `field:NAME` (the distinct values of a metadata field). Names are trimmed; an empty list, an empty
 * entry, a duplicate name or a file that cannot be read is a SelectionInputError naming `source`.
 */
export function parseClassNamesSpec(text: string, source = '--class-names'): ClassNamesSpec {
  const spec = text.trim();
  if (spec === '') throw new SelectionInputError(`${source}: empty; give names (a,b,c), @FILE or field:NAME`);
  if (spec.startsWith('field:')) {
    const field = spec.slice('field:'.length).trim();
    if (!field) throw new SelectionInputError(`${source} '${text}': field: needs a metadata field name`);
    return { kind: 'field', field };
  }
  if (spec.startsWith('@')) {
    const file = path.resolve(spec.slice(1));
    let content: string;
    try {
      content = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SelectionInputError(
        `${source}: cannot read the class names file ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      );
    }
    const names = content
      .split(/\r?\n/)
      .map((line) => line.replace(/#.*/, '').trim())
      .filter(Boolean);
    return { kind: 'file', file, names: checkNames(names, `${source} ${file}`) };
  }
  const entries = spec.split(',').map((n) => n.trim());
  const empty = entries.indexOf('');
  if (empty >= 0)
    throw new SelectionInputError(
      `${source} '${text}': entry ${empty + 1} is empty (names with commas go in a file: @FILE)`,
    );
  return { kind: 'list', names: checkNames(entries, `${source} '${text}'`) };
}

/** At least one name, none repeated, not too many. */
function checkNames(names: string[], where: string): string[] {
  if (names.length === 0) throw new SelectionInputError(`${where}: no class names`);
  const seen = new Set<string>();
  const repeated = [...new Set(names.filter((n) => seen.size === seen.add(n).size))];
  if (repeated.length)
    throw new SelectionInputError(
      `${where}: class name${repeated.length > 1 ? 's' : ''} ${repeated.map((n) => `'${n}'`).join(', ')} given more than once`,
    );
  if (names.length > MAX_CLASS_NAMES)
    throw new SelectionInputError(
      `${where}: ${names.length} class names, more than the ${MAX_CLASS_NAMES} this supports`,
    );
  return names;
}

/** How a spec reads in messages: `--class-names field:label`. */
export function describeClassNamesSpec(spec: ClassNamesSpec): string {
  if (spec.kind === 'field') return `field:${spec.field}`;
  if (spec.kind === 'file') return `@${spec.file}`;
  return spec.names.join(',');
}

/**
 * The class names of a spec. For `field:NAME`: the distinct values of that metadata field over the
 * catalog's samples, sorted by code point (so class k is the same on every run). A field no sample has,
 * or one holding numbers, booleans, objects or arrays rather than text, is a SelectionInputError.
 * Samples without the field (or with null) are not counted; see {@link labelsFromNameField}.
 */
export async function classNamesOf(
  catalog: Catalog,
  spec: ClassNamesSpec,
  source = '--class-names',
): Promise<string[]> {
  if (spec.kind !== 'field') return spec.names;
  const where = `${source} field:${spec.field}`;
  const rows = await catalog.rows<{ value: string; type: string; example: string }>(
    `SELECT metadata->>$field AS value, json_type(metadata->$field) AS type, min(key) AS example
     FROM samples WHERE json_type(metadata->$field) IS NOT NULL AND json_type(metadata->$field) <> 'NULL'
     GROUP BY ALL`,
    { field: spec.field },
  );
  if (rows.length === 0)
    throw new SelectionInputError(
      `${where}: no sample has metadata field '${spec.field}'; metadata fields: ${await metadataFields(catalog)}`,
    );
  const notText = rows.find((r) => r.type !== 'VARCHAR');
  if (notText)
    throw new SelectionInputError(
      `${where}: the field holds ${notText.type.toLowerCase()} values (e.g. ${notText.value} in key '${notText.example}'), ` +
        'not class names: name a field of text values',
    );
  const empty = rows.find((r) => r.value.trim() === '');
  if (empty) throw new SelectionInputError(`${where}: sample '${empty.example}' has an empty class name`);
  const names = rows.map((r) => r.value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return checkNames(names, where);
}

async function metadataFields(catalog: Catalog): Promise<string> {
  const keys = await catalog.rows<{ k: string }>(
    `SELECT DISTINCT unnest(json_keys(metadata)) AS k FROM (SELECT metadata FROM samples LIMIT 1000) ORDER BY k`,
  );
  return keys.length ? keys.map((r) => r.k).join(', ') : 'none';
}

/**
 * Text embeddings of class prompts: every name put into every template, embedded by `encoder`, the
 * template embeddings of a class averaged and the mean renormalised (CLIP's prompt ensembling).
 * Returns K × dim unit rows, class k in row k.
 */
export async function classPromptsFor(
  encoder: Encoder,
  names: readonly string[],
  options: { templates?: readonly string[]; batchSize?: number } = {},
): Promise<Float32Array> {
  const templates = options.templates ?? PROMPT_TEMPLATES;
  if (templates.length === 0) throw new SelectionInputError('class prompts need at least one template');
  const bad = templates.find((t) => !t.includes('{}'));
  if (bad !== undefined)
    throw new SelectionInputError(`prompt template '${bad}' has no {} where the class name goes`);
  if (names.length === 0) throw new SelectionInputError('class prompts need at least one class name');
  const dim = encoder.dim;
  const texts = names.flatMap((name) => templates.map((t) => t.replaceAll('{}', name)));
  const batchSize = options.batchSize ?? 256;
  const sums = new Float64Array(names.length * dim);
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize);
    const rows = await encoder.embedTexts(batch);
    for (let r = 0; r < batch.length; r++) {
      const cls = Math.floor((start + r) / templates.length);
      for (let k = 0; k < dim; k++) sums[cls * dim + k]! += rows[r * dim + k]!;
    }
  }
  const out = l2NormalizeRows(Float32Array.from(sums), dim);
  for (let c = 0; c < names.length; c++) {
    let norm = 0;
    for (let k = 0; k < dim; k++) norm += out[c * dim + k]! ** 2;
    if (!(Math.abs(norm - 1) < 1e-3))
      throw new Error(`class '${names[c]}': its prompt embeddings cancel out (${encoder.name})`);
  }
  return out;
}

/**
 * The class prompts must live where the image embeddings do: the encoder must be the one the
 * workspace's embedding store was made with (same fingerprint). Otherwise a SelectionInputError
 * naming both encoders.
 */
export async function checkWorkspaceEncoder(workspace: string, encoder: Encoder): Promise<void> {
  const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
  const had = store.meta.encoder;
  if (had.fingerprint !== encoder.fingerprint)
    throw new SelectionInputError(
      `class names must be embedded by the encoder of the workspace's embeddings, ${had.name} (${had.fingerprint}); ` +
        `the encoder given is ${encoder.name} (${encoder.fingerprint}): pass --encoder with the model ` +
        'the workspace was embedded with (or embed.encoder in the config)',
    );
}

/**
 * The workspace's encoder from an `--encoder` spec (default `default` = the workspace's offline
 * encoder), checked against the embedding store. `default` on a workspace embedded with a CLIP model is
 * an error before anything is loaded or fitted.
 */
export async function workspaceEncoder(
  catalog: Catalog,
  workspace: string,
  spec = 'default',
): Promise<Encoder> {
  if (isOfflineSpec(spec)) {
    const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
    if (store.meta.encoder.name !== OFFLINE_ENCODER_NAME)
      throw new SelectionInputError(
        `class names must be embedded by the encoder of the workspace's embeddings, ${store.meta.encoder.name}: ` +
          'pass --encoder <model folder or id> (or embed.encoder in the config)',
      );
  }
  // As api.ts resolveEncoder does (not imported from there: api.ts re-exports the pipeline, which uses us).
  const encoder = isOfflineSpec(spec)
    ? await offlineEncoderFor(catalog, workspace)
    : await loadClipEncoder(spec);
  try {
    await checkWorkspaceEncoder(workspace, encoder);
  } catch (err) {
    await encoder.dispose();
    throw err;
  }
  return encoder;
}

/**
 * Everything `SelectInput.classPrompts` needs for a spec: the names (read from the catalog for
 * `field:NAME`), embedded with {@link PROMPT_TEMPLATES} by `encoder` — an Encoder (checked against the
 * workspace's embeddings, left open) or an `--encoder` spec (loaded, checked, and disposed here).
 */
export async function resolveClassNames(
  catalog: Catalog,
  workspace: string,
  spec: ClassNamesSpec,
  encoder?: Encoder | string,
): Promise<ResolvedClassNames> {
  const names = await classNamesOf(catalog, spec);
  const own = typeof encoder === 'object' ? undefined : await workspaceEncoder(catalog, workspace, encoder);
  try {
    const used = own ?? (encoder as Encoder);
    if (!own) await checkWorkspaceEncoder(workspace, used);
    return {
      names,
      embeddings: await classPromptsFor(used, names),
      ...(spec.kind === 'field' ? { labelField: spec.field } : {}),
    };
  } finally {
    await own?.dispose();
  }
}

/**
 * The class index (into `names`) of each sample in `ids`, from a metadata field of class names — the
 * true classes for scoring zero-shot assignments. A sample without the field (or with null) gets −1:
 * it has no known class and is left out of such scores. A value that is not among `names` is a
 * SelectionInputError naming the sample, as are ids not in the catalog.
 */
export async function labelsFromNameField(
  catalog: Catalog,
  ids: ArrayLike<bigint>,
  field: string,
  names: readonly string[],
): Promise<Int32Array> {
  const index = new Map(names.map((n, i) => [n, i]));
  const rows = await catalog.rows<{ id: bigint; key: string; value: string | null }>(
    'SELECT id, key, metadata->>$field AS value FROM samples',
    { field },
  );
  const byId = new Map(rows.map((r) => [BigInt(r.id), r]));
  return Int32Array.from(Array.from(ids), (id) => {
    const row = byId.get(id);
    if (!row) throw new SelectionInputError(`sample ${id} is not in the catalog`);
    if (row.value === null) return -1;
    const c = index.get(row.value);
    if (c === undefined)
      throw new SelectionInputError(
        `sample '${row.key}': metadata ${field} '${row.value}' is not one of the ${names.length} class names`,
      );
    return c;
  });
}
