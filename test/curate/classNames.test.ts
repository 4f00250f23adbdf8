import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/catalog.js';
import {
  classNamesOf,
  classPromptsFor,
  labelsFromNameField,
  parseClassNamesSpec,
  PROMPT_TEMPLATES,
  resolveClassNames,
  workspaceEncoder,
} from '../../src/curate/classNames.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { SelectionInputError } from '../../src/select/contract.js';
import { baseKey, MINI, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';
import { loadEmbeddings } from '../../src/curate/embeddings.js';
import { latentClasses } from '../../src/select/latentClasses.js';
import { embeddedMini } from '../support/miniWorkspace.js';
import { writeTinyClip } from '../support/tinyClip.js';

const cli = captureCli();

/** One embedded mini workspace for the whole file (the catalog is opened and closed per describe). */
let workspace: string;
let model: string;
beforeAll(async () => {
  ({ workspace, model } = await embeddedMini());
});

describe('parseClassNamesSpec', () => {
  it('reads a comma list, trimming each name', () => {
    expect(parseClassNamesSpec(' cat, dog ,red car')).toEqual({
      kind: 'list',
      names: ['cat', 'dog', 'red car'],
    });
  });

  it('reads a file: one name per line, # comments and blank lines skipped', async () => {
    const file = path.join(await tempDir(), 'classes.txt');
    await writeFile(file, '# CIFAR classes\ncat\n\n  dog  # good boy\r\nsports car, red\n   \n');
    expect(parseClassNamesSpec(`@${file}`)).toEqual({
      kind: 'file',
      file,
      names: ['cat', 'dog', 'sports car, red'],
    });
  });

  it('reads field:NAME', () => {
    expect(parseClassNamesSpec('field:label')).toEqual({ kind: 'field', field: 'label' });
  });

  it.each([
    ['', /--class-names: empty/],
    ['   ', /--class-names: empty/],
    ['cat,,dog', /entry 2 is empty/],
    ['cat,dog,', /entry 3 is empty/],
    ['cat,dog,cat,dog,bird', /class names 'cat', 'dog' given more than once/],
    ['field:', /field: needs a metadata field name/],
  ])('rejects %j', (text, message) => {
    expect(() => parseClassNamesSpec(text)).toThrow(SelectionInputError);
    expect(() => parseClassNamesSpec(text)).toThrow(message);
  });

  it('names a missing file, and a file without names', async () => {
    const dir = await tempDir();
    const missing = path.join(dir, 'nope.txt');
    expect(() => parseClassNamesSpec(`@${missing}`)).toThrow(`${missing}: no such file`);
    const comments = path.join(dir, 'comments.txt');
    await writeFile(comments, '# only a comment\n\n');
    expect(() => parseClassNamesSpec(`@${comments}`, 'classNames (curate.config.json)')).toThrow(
      `classNames (curate.config.json) ${comments}: no class names`,
    );
  });
});

describe('class names of a real workspace', () => {
  let catalog: Catalog;
  let encoder: ClipOnnxEncoder;
  /** The fixture's labels per key, from its JSONL manifest (not from the catalog). */
  const manifest = new Map(
    readFileSync(path.join(MINI, 'manifest.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { key: string; label: string })
      .map((r) => [r.key, r.label]),
  );

  beforeAll(async () => {
    catalog = await Catalog.open(workspace);
    encoder = await ClipOnnxEncoder.load(model);
  });
  afterAll(async () => {
    await encoder?.dispose();
    catalog?.close();
  });

  it('field:NAME gives the sorted distinct values of the field', async () => {
    const expected = [...new Set(manifest.values())].sort();
    expect(expected.length).toBeGreaterThan(2);
    expect(await classNamesOf(catalog, parseClassNamesSpec('field:label'))).toEqual(expected);
    // Samples whose value is null are not counted: caption_label is null for the noisy captions.
    const captionLabels = await classNamesOf(catalog, parseClassNamesSpec('field:caption_label'));
    expect(captionLabels).not.toContain(null);
    expect(captionLabels.length).toBeGreaterThan(1);
  });

  it('rejects a field no sample has, naming the fields there are', async () => {
    const err = await classNamesOf(catalog, parseClassNamesSpec('field:colour')).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SelectionInputError);
    expect((err as Error).message).toMatch(/field:colour: no sample has metadata field 'colour'/);
    expect((err as Error).message).toMatch(/metadata fields: .*label_index/);
  });

  it('rejects a field of numbers', async () => {
    await expect(classNamesOf(catalog, parseClassNamesSpec('field:label_index'))).rejects.toThrow(
      /field:label_index: the field holds (u?bigint|integer) values .* not class names/,
    );
  });

  it('labels samples by the index of their field value among the names', async () => {
    const rows = await catalog.rows<{ id: bigint; key: string }>('SELECT id, key FROM samples ORDER BY id');
    const ids = rows.map((r) => BigInt(r.id));
    const names = await classNamesOf(catalog, parseClassNamesSpec('field:label'));
    const labels = await labelsFromNameField(catalog, ids, 'label', names);
    expect(Array.from(labels)).toEqual(rows.map((r) => names.indexOf(manifest.get(baseKey(r.key))!)));
    expect(labels.every((l) => l >= 0)).toBe(true);

    // A sample without a value (null) has no known class: −1.
    const captionNames = await classNamesOf(catalog, parseClassNamesSpec('field:caption_label'));
    const captionLabels = await labelsFromNameField(catalog, ids, 'caption_label', captionNames);
    const nulls = await catalog.rows<{ id: bigint }>(
      `SELECT id FROM samples WHERE metadata->>'caption_label' IS NULL`,
    );
    const nullIds = new Set(nulls.map((r) => BigInt(r.id)));
    expect(nullIds.size).toBeGreaterThan(0);
    ids.forEach((id, i) => expect(captionLabels[i]! < 0).toBe(nullIds.has(id)));

    // A value that is not among the names is an error naming the sample.
    await expect(labelsFromNameField(catalog, ids, 'label', names.slice(1))).rejects.toThrow(
      new RegExp(`metadata label '${names[0]}' is not one of the ${names.length - 1} class names`),
    );
  });

  it('prompts are unit rows: the renormalised mean of the template embeddings', async () => {
    const names = ['cat', 'sports car'];
    const prompts = await classPromptsFor(encoder, names);
    expect(prompts.length).toBe(names.length * encoder.dim);
    for (const [c, name] of names.entries()) {
      // Independently: one template at a time, summed in doubles, normalised.
      const mean = new Float64Array(encoder.dim);
      for (const t of PROMPT_TEMPLATES) {
        const row = await encoder.embedTexts([t.replace('{}', name)]);
        row.forEach((v, k) => (mean[k]! += v));
      }
      const norm = Math.hypot(...mean);
      const row = prompts.subarray(c * encoder.dim, (c + 1) * encoder.dim);
      expect(Math.hypot(...row)).toBeCloseTo(1, 5);
      row.forEach((v, k) => expect(v).toBeCloseTo(mean[k]! / norm, 5));
    }
    // Batches that cut through a class's templates give the same rows.
    expect(await classPromptsFor(encoder, names, { batchSize: 5 })).toEqual(prompts);
    // The ensemble is not the first template alone.
    const single = await classPromptsFor(encoder, ['cat'], { templates: ['a photo of a {}.'] });
    const dot = single.reduce((s, v, k) => s + v * prompts[k]!, 0);
    expect(dot).toBeLessThan(0.99999);
    await expect(classPromptsFor(encoder, ['cat'], { templates: ['a photo'] })).rejects.toThrow(
      "prompt template 'a photo' has no {}",
    );
  });

  it('resolves a spec with the workspace encoder, by object or by --encoder spec', async () => {
    const spec = parseClassNamesSpec('field:label');
    const byObject = await resolveClassNames(catalog, workspace, spec, encoder);
    const bySpec = await resolveClassNames(catalog, workspace, spec, model);
    expect(byObject.labelField).toBe('label');
    expect(byObject.names).toEqual([...new Set(manifest.values())].sort());
    expect(bySpec.names).toEqual(byObject.names);
    expect(bySpec.embeddings).toEqual(byObject.embeddings);
    expect(bySpec.embeddings.length).toBe(byObject.names.length * encoder.dim);
    const list = await resolveClassNames(catalog, workspace, parseClassNamesSpec('cat,dog'), encoder);
    expect(list.labelField).toBeUndefined();
    expect(list.embeddings).toEqual(await classPromptsFor(encoder, ['cat', 'dog']));
  });

  it('the prompts give zero-shot latent classes: each image in the class of its nearest prompt', async () => {
    const e = await loadEmbeddings(catalog, workspace);
    const classes = await resolveClassNames(catalog, workspace, parseClassNamesSpec('field:label'), encoder);
    const input = { ...e, classPrompts: classes };
    const space = { rows: e.n, cols: e.dim, data: e.image! };
    const latent = await latentClasses(input, 'auto', 'auto', space, 0);
    expect(latent.source).toBe('zero-shot');
    const K = classes.names.length;
    const argmax = Array.from({ length: e.n }, (_, i) => {
      let best = 0;
      let bestDot = -Infinity;
      for (let c = 0; c < K; c++) {
        let dot = 0;
        for (let k = 0; k < e.dim; k++) dot += e.image![i * e.dim + k]! * classes.embeddings[c * e.dim + k]!;
        if (dot > bestDot) [best, bestDot] = [c, dot];
      }
      return best;
    });
    expect(Array.from(latent.assignment)).toEqual(argmax);
  });

  it('refuses an encoder other than the one the workspace was embedded with', async () => {
    const other = await writeTinyClip(path.join(await tempDir(), 'other'), { seed: 11 });
    const spec = parseClassNamesSpec('cat,dog');
    const err = await resolveClassNames(catalog, workspace, spec, other).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SelectionInputError);
    expect((err as Error).message).toMatch(
      /embedded by the encoder of the workspace's embeddings, clip-.*tiny.*; the encoder given is clip-.*other/,
    );
    // `default` (the offline encoder) on a CLIP workspace fails before anything is fitted.
    await expect(workspaceEncoder(catalog, workspace)).rejects.toThrow(/pass --encoder/);
  });
});

describe('curate select/compare --class-names', () => {
  it('rejects a bad spec before any work, with exit 2', async () => {
    const run = await cli.curate(
      '-w',
      workspace,
      'select',
      '--method',
      'clipcov',
      '--budget',
      '10%',
      '--class-names',
      'cat,,dog',
    );
    expect(run.code).toBe(2);
    expect(cli.stderr()).toMatch(/--class-names 'cat,,dog': entry 2 is empty/);
  });

  it('rejects a field no sample has, with exit 2', async () => {
    const run = await cli.curate(
      '-w',
      workspace,
      'compare',
      '--methods',
      'random',
      '--budget',
      '10%',
      '--class-names',
      'field:colour',
    );
    expect(run.code).toBe(2);
    expect(cli.stderr()).toMatch(/no sample has metadata field 'colour'/);
  });

  it('names the config file when its classNames is bad, and refuses --encoder alone', async () => {
    const config = path.join(await tempDir(), 'curate.config.json');
    await writeFile(config, JSON.stringify({ classNames: 'cat,cat' }));
    const bad = await cli.curate(
      '-w',
      workspace,
      'select',
      '--method',
      'clipcov',
      '--budget',
      '10%',
      '--config',
      config,
    );
    expect(bad.code).toBe(2);
    expect(cli.stderr()).toContain(`classNames (${config}) 'cat,cat': class name 'cat' given more than once`);
    const alone = await cli.curate(
      '-w',
      workspace,
      'select',
      '--method',
      'clipcov',
      '--budget',
      '10%',
      '--encoder',
      model,
    );
    expect(alone.code).toBe(2);
    expect(cli.stderr()).toMatch(/--encoder is only used with --class-names/);
  });
});
