/**
 * examples/pytorch/schedule_sampler.py against real dynamic exports (docs/schedules.md): a CREST
 * selection (step-unit, warm-up epoch, repeated keys) and a CRAIG selection with epochs (epoch-unit),
 * selected and exported by clipcurate on the mini fixture, then sampled by the real script under
 * Debian's python3-torch. Runs with `npm run test:ui` (scripts/python-tools.sh installs torch).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { listValue } from '@duckdb/node-api';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/api.js';
import { formatExport } from '../../src/curate/cli/exportCommands.js';
import { exportSelection, type ExportReport } from '../../src/curate/export/index.js';
import { selectSubset } from '../../src/curate/pipeline.js';
import { setReview } from '../../src/curate/reviews.js';
import { readSchedule, roundInForce, scheduleKeys, type ScheduleLine } from '../../src/curate/schedule.js';
import type { StoredSelection } from '../../src/curate/selections.js';
import { tempDir } from '../helpers.js';
import { embeddedMini } from '../support/miniWorkspace.js';

const PYTHON = '/usr/bin/python3';
const SAMPLER = path.resolve(import.meta.dirname, '../../examples/pytorch/schedule_sampler.py');
/** Runs the sampler's command line several times in one process: torch is imported once. */
const DRIVER = path.resolve(import.meta.dirname, 'run_sampler.py');

interface Batch {
  epoch: number;
  step: number;
  round: number;
  positions: number[];
  weights: number[];
}

interface Exported {
  stored: StoredSelection;
  report: ExportReport;
  out: string;
  rounds: ScheduleLine[];
  unit: string;
  total: number;
  /** Manifest keys in export-position order. */
  keys: string[];
}

let workspace: string;
let catalog: Catalog;
let crest: Exported;
let craig: Exported;
/** The CRAIG selection exported as keys.txt, CSV and WebDataset. */
const craigOthers = new Map<string, Exported>();
/** CREST exported as CSV after a person rejected one schedule-only key, and that key. */
let crestRejected: Exported;
let rejectedKey: string;
/** A CRAIG export as older versions wrote it: the static picks only, with the schedule beside them. */
let staticOnly: string;

async function exported(
  stored: StoredSelection,
  format: 'jsonl' | 'csv' | 'keys' | 'webdataset',
): Promise<Exported> {
  const out = path.join(await tempDir({ forFile: true }), `${stored.name}-${format}`);
  const report = await exportSelection(catalog, workspace, stored.name, { format, out });
  const { header, rounds } = await readSchedule(path.join(out, 'schedule.jsonl'));
  const manifest = format === 'jsonl' ? await readFile(path.join(out, 'manifest.jsonl'), 'utf8') : '';
  const keys = manifest
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { key: string }).key);
  return { stored, report, out, rounds, unit: header.unit, total: header.total, keys };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  batches: Batch[];
}

const runs = new Map<string, Run>();

/** Runs every sampler command line in one python process; `runs` gets each one's result by label. */
async function sampleAll(requests: Record<string, string[]>): Promise<void> {
  const dir = await tempDir({ forFile: true });
  const labels = Object.keys(requests);
  const argv = labels.map((label) => [...requests[label]!, '--json-out', path.join(dir, `${label}.jsonl`)]);
  await writeFile(path.join(dir, 'runs.json'), JSON.stringify(argv));
  execFileSync(PYTHON, [DRIVER, path.join(dir, 'runs.json'), path.join(dir, 'results.json')], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  const results = JSON.parse(await readFile(path.join(dir, 'results.json'), 'utf8')) as Omit<
    Run,
    'batches'
  >[];
  for (const [i, label] of labels.entries()) {
    const text = results[i]!.code === 0 ? await readFile(path.join(dir, `${label}.jsonl`), 'utf8') : '';
    const batches = text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Batch);
    runs.set(label, { ...results[i]!, batches });
  }
}

function run(label: string): Run {
  const r = runs.get(label)!;
  expect(r.stderr, label).not.toMatch(/Traceback/);
  return r;
}

/** "key weight" entries, sorted: a multiset to compare rounds and what the sampler yielded. */
const entries = (keys: readonly string[], weights: readonly number[]) =>
  keys.map((k, i) => `${k} ${weights[i]!.toFixed(5)}`).sort();

beforeAll(async () => {
  const torch = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (torch.status !== 0)
    throw new Error(
      `${PYTHON} cannot import torch and numpy (${(torch.stderr || String(torch.error)).trim()}): ` +
        'run `bash scripts/python-tools.sh` (installs Debian python3-torch and python3-numpy)',
    );
  ({ workspace } = await embeddedMini());
  catalog = await Catalog.open(workspace);
  const select = (method: string, budget: string, params: Record<string, unknown>) =>
    selectSubset(catalog, workspace, { method, budget, labelField: 'label_index', params, name: method });
  crest = await exported(await select('crest', '25%', { batchSize: 16, epochs: 10 }), 'jsonl');
  craig = await exported(await select('craig', '10%', { mode: 'gradients', epochs: 3 }), 'jsonl');
  for (const format of ['keys', 'csv', 'webdataset'] as const)
    craigOthers.set(format, await exported(craig.stored, format));
  rejectedKey = scheduleKeys(crest.rounds).find((k) => !crest.stored.keys.includes(k))!;
  await setReview(catalog, [rejectedKey], 'reject');
  crestRejected = await exported(crest.stored, 'csv');
  await setReview(catalog, [rejectedKey], null);
  staticOnly = path.join(await tempDir({ forFile: true }), 'static-only');
  await mkdir(staticOnly);
  for (const f of ['schedule.jsonl', 'provenance.json'])
    await copyFile(path.join(craig.out, f), path.join(staticOnly, f));
  const manifest = (await readFile(path.join(craig.out, 'manifest.jsonl'), 'utf8')).split('\n');
  await writeFile(
    path.join(staticOnly, 'manifest.jsonl'),
    manifest.slice(0, craig.stored.keys.length).join('\n') + '\n',
  );
  await sampleAll({
    crestExact: [crest.out, '--exact-batches'],
    crestShort: [crest.out, '--steps', String(Math.ceil(crest.total / 4)), '--epochs', '2'],
    craig: [craig.out, '--epochs', String(2 * craig.total), '--batch-size', '7'],
    craigDefault: [craig.out],
    ...Object.fromEntries([...craigOthers].map(([format, e]) => [`craig-${format}`, [e.out]])),
    staticOnly: [staticOnly],
    crestRejected: [crestRejected.out],
    craigSteps: [craig.out, '--steps', '10'],
  });
}, 180_000);

afterAll(() => catalog?.close());

describe('dynamic exports hold what their schedule needs', () => {
  it('a CREST export holds the union of every round and the static picks; the summary and data figure say so', async () => {
    const union = scheduleKeys(crest.rounds);
    expect(union.length).toBeGreaterThan(crest.stored.keys.length);
    const exportedKeys = new Set(crest.keys);
    expect(union.filter((k) => !exportedKeys.has(k))).toEqual([]);
    expect(crest.keys.slice(0, crest.stored.keys.length)).toEqual(crest.stored.keys);
    expect(new Set([...crest.stored.keys, ...union]).size).toBe(crest.keys.length);
    expect(crest.report.schedule).toMatchObject({
      rounds: crest.rounds.length,
      keys: union.length,
      samples: crest.keys.length,
      keysOutsideExport: 0,
    });
    expect(formatExport(crest.report)).toContain(
      `dynamic selection: exported the union of ${crest.rounds.length} rounds' keys (${union.length}) and the ` +
        `${crest.stored.keys.length} static picks, ${crest.keys.length} samples; schedule.jsonl beside manifest.jsonl`,
    );
    // Data moved = tier-2 bytes (image + caption) of everything exported, not of the static picks.
    const rows = await catalog.rows<{ bytes: number }>(
      `SELECT sum(image_bytes + strlen(caption))::DOUBLE AS bytes FROM samples
       WHERE list_contains($keys::VARCHAR[], key)`,
      { keys: listValue(crest.keys) },
    );
    expect(crest.report.bytes.tier2Selected).toBe(rows[0]!.bytes);
    // Schedule-only samples carry γ = 0; the static picks keep mean-1 weights among themselves.
    const manifest = (await readFile(path.join(crest.out, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { weight: number; weight_raw: number });
    const statics = manifest.slice(0, crest.stored.keys.length);
    expect(statics.reduce((a, r) => a + r.weight, 0) / statics.length).toBeCloseTo(1, 9);
    expect(manifest.slice(crest.stored.keys.length).every((r) => r.weight === 0 && r.weight_raw === 0)).toBe(
      true,
    );
  });
});

describe('schedule_sampler.py on a CREST export (step unit, warm-up, repeated keys)', () => {
  it('follows every round step by step, warms up on the whole export, weights per position', async () => {
    // The command line as docs/schedules.md shows it.
    const json = path.join(await tempDir(), 'batches.jsonl');
    const stdout = execFileSync(PYTHON, [SAMPLER, crest.out, '--json-out', json], { encoding: 'utf8' });
    const batches = (await readFile(json, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Batch);
    const steps = crest.total;
    expect(batches.map((b) => b.step)).toEqual(Array.from({ length: steps }, (_, t) => t));
    // The round of every step is the TS rule's (the warm-up is -1).
    for (const b of batches) {
      const r = roundInForce(crest.rounds, b.step / steps);
      expect(b.round, `step ${b.step}`).toBe(r ? r.round : -1);
    }
    const used = new Set(batches.map((b) => b.round));
    for (const r of crest.rounds) expect(used.has(r.round), `round ${r.round}`).toBe(true);
    expect(stdout).toContain(`rounds used: ${crest.rounds.length} of ${crest.rounds.length}\n`);

    // Warm-up: epoch 0 (progress < round 0's start) draws a shuffle of the whole export, weight 1.
    expect(crest.rounds[0]!.start).toBeGreaterThan(0);
    const warm = batches.filter((b) => b.round === -1);
    expect(warm.length).toBe(Math.ceil(crest.rounds[0]!.start * steps));
    expect(warm.every((b) => b.epoch === 0)).toBe(true);
    const warmPositions = warm.flatMap((b) => b.positions);
    const n = crest.keys.length;
    const firstPass = warmPositions.slice(0, n);
    expect(new Set(firstPass).size).toBe(firstPass.length);
    if (warmPositions.length >= n) expect(new Set(firstPass).size).toBe(n);
    expect(warm.flatMap((b) => b.weights).every((w) => w === 1)).toBe(true);
    expect(stdout).toMatch(
      /epoch 0: \d+ batches, \d+ samples .*warm-up \(whole export, weight 1\); weights min 1\.000 mean 1\.000 max 1\.000/,
    );

    // Per round: the sampler walks a shuffle of the round's entries (key, weight); repeated keys keep
    // their own weights. The first pass is a sub-multiset of the round, the whole round when long enough.
    let repeatedWithOwnWeights = 0;
    for (const r of crest.rounds) {
      const yielded = batches.filter((b) => b.round === r.round);
      const keys = yielded.flatMap((b) => b.positions.map((p) => crest.keys[p]!));
      const weights = yielded.flatMap((b) => b.weights);
      const firstKeys = keys.slice(0, r.keys.length);
      const got = entries(firstKeys, weights.slice(0, r.keys.length));
      const want = entries(r.keys, r.weights);
      if (keys.length >= r.keys.length) expect(got, `round ${r.round}`).toEqual(want);
      else {
        const pool = [...want];
        for (const e of got) {
          const at = pool.indexOf(e);
          expect(at, `round ${r.round}: ${e} is not an entry of the round`).toBeGreaterThanOrEqual(0);
          pool.splice(at, 1);
        }
      }
      const weightsOf = new Map<string, Set<string>>();
      r.keys.forEach((k, i) =>
        weightsOf.set(k, (weightsOf.get(k) ?? new Set()).add(r.weights[i]!.toFixed(5))),
      );
      repeatedWithOwnWeights += [...weightsOf.values()].filter((s) => s.size > 1).length;
    }
    // The fixture's CREST rounds do repeat keys with different weights, so the check above bites.
    expect(repeatedWithOwnWeights).toBeGreaterThan(0);
  });

  it('a schedule key rejected in review is left out of the export and of its rounds, named, never a KeyError', () => {
    expect(crestRejected.report.warnings.join('\n')).toContain(
      'schedule.jsonl names 1 keys that are not in this export (skipped or rejected in review',
    );
    expect(crestRejected.report.review.rejected).toEqual([rejectedKey]);
    const entries = crest.rounds.reduce((a, r) => a + r.keys.filter((k) => k === rejectedKey).length, 0);
    const r = run('crestRejected');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `export: ${crest.keys.length - 1} samples in ${path.join(crestRejected.out, 'manifest.csv')}`,
    );
    expect(r.stdout).toContain(`; ${entries} schedule entries left out (skipped or rejected at export)`);
    expect(r.stdout).toContain(`rounds used: ${crest.rounds.length} of ${crest.rounds.length}`);
  });

  it('exact mini-batch coresets: every batch is one coreset of its round', () => {
    const { batches } = run('crestExact');
    for (const b of batches.filter((x) => x.round >= 0)) {
      const r = crest.rounds[b.round]!;
      const groups = new Map<number, string[]>();
      r.keys.forEach((k, i) =>
        groups.set(r.batches![i]!, [
          ...(groups.get(r.batches![i]!) ?? []),
          `${k} ${r.weights[i]!.toFixed(5)}`,
        ]),
      );
      const got = entries(
        b.positions.map((p) => crest.keys[p]!),
        b.weights,
      );
      expect([...groups.values()].some((g) => JSON.stringify([...g].sort()) === JSON.stringify(got))).toBe(
        true,
      );
    }
  });

  it('fewer training steps than the proxy run still map by progress and name the rounds never in force', () => {
    const { stdout, batches } = run('crestShort');
    for (const b of batches) {
      const r = roundInForce(crest.rounds, b.step / Math.ceil(crest.total / 4));
      expect(b.round).toBe(r ? r.round : -1);
    }
    expect(stdout).toMatch(/rounds used: \d+ of \d+/);
  });
});

describe('schedule_sampler.py on a CRAIG-with-epochs export (epoch unit)', () => {
  it('each epoch is one pass over the round in force at epoch / epochs, with its per-position weights', () => {
    expect(craig.unit).toBe('epoch');
    const epochs = 2 * craig.total;
    const { stdout, batches } = run('craig');
    for (let e = 0; e < epochs; e++) {
      const r = roundInForce(craig.rounds, e / epochs)!;
      const mine = batches.filter((b) => b.epoch === e);
      expect(new Set(mine.map((b) => b.round))).toEqual(new Set([r.round]));
      expect(mine.every((b) => b.positions.length <= 7)).toBe(true);
      expect(
        entries(
          mine.flatMap((b) => b.positions.map((p) => craig.keys[p]!)),
          mine.flatMap((b) => b.weights),
        ),
      ).toEqual(entries(r.keys, r.weights));
    }
    expect(stdout).toContain(`rounds used: ${craig.rounds.length} of ${craig.rounds.length}\n`);
    expect(stdout).not.toContain('warm-up');
  });

  it('reads keys.txt, CSV and WebDataset exports to the same positions', () => {
    const reference = run('craigDefault').batches;
    expect(reference.length).toBeGreaterThan(0);
    for (const format of craigOthers.keys())
      expect(run(`craig-${format}`).batches, format).toEqual(reference);
  });

  it('an export without the schedule keys (static picks only) is refused, naming the key; a bad option is exit 2', () => {
    const missing = scheduleKeys(craig.rounds).find((k) => !craig.stored.keys.includes(k))!;
    const old = run('staticOnly');
    expect(old.code).toBe(2);
    expect(old.stderr).toContain(
      `names key '${missing}', which is not in ${path.join(staticOnly, 'manifest.jsonl')}`,
    );
    expect(old.stderr).not.toContain('KeyError');
    const steps = run('craigSteps');
    expect(steps.code).toBe(2);
    expect(steps.stderr).toContain('steps applies to step-unit schedules only');
  });
});
