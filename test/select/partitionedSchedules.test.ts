/**
 * The quota form of the partitioned scheme (dynamic methods: CREST, SeTa, GRAFT and CRAIG-family
 * schedules): quotas that add up to the budget, schedules joined so that at every moment of training
 * the merged round is the partitions' rounds in force, and each partition's share of the merged
 * result being exactly what the method gives on that partition alone.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/compute/random.js';
import type { Schedule, ScheduleRound, Selection, SelectInput } from '../../src/select/contract.js';
import {
  concatenateSchedules,
  formFor,
  isQuotaForm,
  partitionedFormOf,
  partitionQuotas,
  partitionSeed,
  selectByPartitions,
  type PartitionedForm,
} from '../../src/select/partitioned.js';
import { getSelector, partitionedMethods, scaleModeOf } from '../../src/select/registry.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

function inForce(schedule: Schedule, progress: number): ScheduleRound | undefined {
  return schedule.rounds.find((r) => r.start <= progress && progress < r.end);
}

/** A random schedule over `rows` (its own cut points, some gaps, optional weights and batches). */
function randomSchedule(random: () => number, rows: number[], unit: Schedule['unit']): Schedule {
  const cuts = [0, ...Array.from({ length: 4 }, () => Math.round(random() * 1000) / 1000), 1]
    .sort((a, b) => a - b)
    .filter((c, i, all) => i === 0 || c > all[i - 1]!);
  const rounds: ScheduleRound[] = [];
  const weighted = random() < 0.5;
  for (let c = 0; c + 1 < cuts.length; c++) {
    if (random() < 0.25) continue; // a gap: no round in force (as CREST's warm-up)
    const indices = Int32Array.from(rows.filter(() => random() < 0.5));
    rounds.push({
      start: cuts[c]!,
      end: cuts[c + 1]!,
      indices,
      ...(weighted ? { weights: Float32Array.from(indices, () => 1 + Math.floor(random() * 5)) } : {}),
      batches: Int32Array.from(indices, () => Math.floor(random() * 3)),
    });
  }
  return { unit, total: 10 + Math.floor(random() * 10), rounds };
}

function partitionInputs(
  x: { rows: number; cols: number; data: Float32Array },
  sizes: number[],
): SelectInput[] {
  let start = 0;
  return sizes.map((n) => {
    const image = x.data.slice(start * x.cols, (start + n) * x.cols);
    start += n;
    return { n, dim: x.cols, image };
  });
}

function parse(method: string, raw: object): object {
  return (getSelector(method).params as { parse(v: unknown): object }).parse(raw);
}

function formOf(method: string, params: object): PartitionedForm {
  const form = formFor(partitionedFormOf(getSelector(method), partitionedMethods()).partitioned, params);
  expect(isQuotaForm(form)).toBe(true);
  return form;
}

/**
 * Runs `method` partitioned over `sizes` and, on each partition alone, at its quota with its seed: the
 * merged schedule restricted to a partition's rows must be that partition's own schedule, round by
 * round, and the static picks (and their stages) its own.
 */
async function checkAgainstPartitionsAlone(method: string, raw: object, sizes: number[], budget: number) {
  const params = parse(method, raw);
  const form = formOf(method, params);
  const total = sizes.reduce((a, b) => a + b, 0);
  const { x } = gaussianClasses(total, 12, 6, 31);
  const parts = partitionInputs(x, sizes);
  const merged = await selectByPartitions(form, parts, budget, params, 5);
  const quotas = partitionQuotas(sizes, budget);
  expect(merged.indices.length).toBeLessThanOrEqual(budget);
  const schedule = merged.schedule ?? { unit: 'epoch', total: 0, rounds: [] };
  const alones: Selection[] = [];
  let start = 0;
  for (const [t, part] of parts.entries()) {
    const alone = await getSelector(method).select(part, quotas[t]!, params as never, {
      seed: partitionSeed(form as never, 5, t),
    });
    alones.push(alone);
    const mine = (rows: Int32Array) =>
      Array.from(rows)
        .filter((r) => r >= start && r < start + part.n)
        .map((r) => r - start);
    expect(mine(merged.indices)).toEqual(Array.from(alone.indices));
    if (alone.stages) {
      const stageOf = new Map(Array.from(merged.indices, (r, j) => [r, merged.stages![j]!]));
      expect(Array.from(alone.indices, (r) => stageOf.get(r + start))).toEqual(Array.from(alone.stages));
    }
    for (const round of alone.schedule?.rounds ?? []) {
      const middle = (round.start + round.end) / 2;
      expect(mine(inForce(schedule, middle)!.indices)).toEqual(Array.from(round.indices));
    }
    start += part.n;
  }
  return { schedule, quotas, merged, alones };
}

describe('partitioned schedules (dynamic methods)', () => {
  it('quotas: proportional to the sizes, each within one of B·n_I/N, adding up to B; ties to the lower partition', () => {
    const random = seededRandom(4);
    for (let trial = 0; trial < 200; trial++) {
      const sizes = Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * 500));
      const total = sizes.reduce((a, b) => a + b, 0);
      if (total === 0) continue;
      const budget = 1 + Math.floor(random() * total);
      const quotas = partitionQuotas(sizes, budget);
      expect(quotas.reduce((a, b) => a + b, 0)).toBe(budget);
      quotas.forEach((q, i) => {
        const fair = (budget * sizes[i]!) / total;
        expect(q).toBeGreaterThanOrEqual(Math.floor(fair));
        expect(q).toBeLessThanOrEqual(Math.ceil(fair));
      });
    }
    expect(partitionQuotas([10, 10, 10], 2)).toEqual([1, 1, 0]);
    expect(partitionQuotas([0, 7], 3)).toEqual([0, 3]);
  });

  it('joined schedules: at any moment the merged round is the partitions’ rounds in force, batches kept whole and distinct', () => {
    const random = seededRandom(9);
    for (let trial = 0; trial < 50; trial++) {
      const unit = random() < 0.5 ? 'epoch' : 'step';
      const parts = [0, 1, 2].map((t) =>
        randomSchedule(
          random,
          Array.from({ length: 20 }, (_, i) => 100 * t + i),
          unit,
        ),
      );
      const merged = concatenateSchedules(parts);
      expect(merged.total).toBe(
        unit === 'epoch' ? Math.max(...parts.map((s) => s.total)) : parts.reduce((n, s) => n + s.total, 0),
      );
      for (let probe = 0; probe < 40; probe++) {
        const progress = random();
        const own = parts.map((s) => inForce(s, progress));
        const round = inForce(merged, progress);
        const expected = own.flatMap((r) => (r ? Array.from(r.indices) : []));
        if (own.every((r) => !r)) {
          expect(round).toBeUndefined();
          continue;
        }
        expect(Array.from(round!.indices)).toEqual(expected);
        const weights = own.flatMap((r) =>
          r ? Array.from(r.weights ?? new Float32Array(r.indices.length).fill(1)) : [],
        );
        if (round!.weights) expect(Array.from(round!.weights)).toEqual(weights);
        else expect(weights.every((w) => w === 1)).toBe(true);
        // Two picks share a merged batch exactly when they come from one partition and share its batch.
        const source = own.flatMap((r, t) => (r ? Array.from(r.batches!, (b) => `${t}:${b}`) : []));
        const batches = Array.from(round!.batches!);
        for (let a = 0; a < source.length; a++)
          for (let b = a + 1; b < source.length; b++)
            expect(batches[a] === batches[b]).toBe(source[a] === source[b]);
      }
    }
    expect(() =>
      concatenateSchedules([
        { unit: 'epoch', total: 2, rounds: [] },
        { unit: 'step', total: 2, rounds: [] },
      ]),
    ).toThrow(/unit/);
  });

  it('SeTa: one merged round per epoch, each partition’s share exactly its own SeTa at its quota', async () => {
    const { schedule, quotas } = await checkAgainstPartitionsAlone(
      'seta',
      { epochs: 4, features: 'image' },
      [240, 300, 180],
      72,
    );
    expect(quotas).toEqual([24, 30, 18]);
    expect(schedule.unit).toBe('epoch');
    expect(schedule.rounds.length).toBe(4);
    expect(schedule.rounds.every((r) => r.info?.partitions === 3)).toBe(true);
  });

  it('CREST: rounds cut at every partition’s boundaries, each partition’s mini-batches whole; steps add up', async () => {
    const params = { epochs: 3, batchSize: 16, pseudoClasses: 4 };
    const { schedule } = await checkAgainstPartitionsAlone('crest', params, [320, 256], 58);
    expect(schedule.unit).toBe('step');
    const alone = await Promise.all(
      [320, 256].map(async (n, t) => {
        const { x } = gaussianClasses(576, 12, 6, 31);
        const input = partitionInputs(x, [320, 256])[t]!;
        return getSelector('crest').select(
          input,
          partitionQuotas([320, 256], 58)[t]!,
          parse('crest', params) as never,
          {
            seed: partitionSeed(formOf('crest', parse('crest', params)) as never, 5, t),
          },
        );
      }),
    );
    expect(schedule.total).toBe(alone.reduce((s, a) => s + a.schedule!.total, 0));
    // Within a merged round a partition's picks are one contiguous run in its own order, and its batch
    // ids map one-to-one onto merged ids.
    for (const [t, a] of alone.entries()) {
      for (const round of a.schedule!.rounds) {
        const merged = inForce(schedule, (round.start + round.end) / 2)!;
        const offset = t === 0 ? 0 : 320;
        const at = Array.from(merged.indices).findIndex((r) => r >= offset && r < offset + [320, 256][t]!);
        const own = Array.from(round.batches!);
        const mapped = Array.from(merged.batches!.subarray(at, at + own.length));
        const pairs = new Set(own.map((b, j) => `${b}→${mapped[j]}`));
        expect(pairs.size).toBe(new Set(own).size);
        expect(pairs.size).toBe(new Set(mapped).size);
      }
    }
  });

  it.each([
    ['craig', { mode: 'gradients', epochs: 2, clusters: 4 }],
    ['adacore', { epochs: 2, clusters: 4 }],
    ['augcoreset', { epochs: 2, clusters: 4 }],
  ] as const)(
    '%s with epochs > 0: each partition’s share of the joined schedule is its own',
    async (method, raw) => {
      const { schedule } = await checkAgainstPartitionsAlone(method, raw, [200, 160], 36);
      expect(schedule.rounds.length).toBeGreaterThan(0);
    },
  );

  it('pdd-synth: stage s of the join is every partition’s stage s, each partition’s snapped picks its own', async () => {
    const raw = { stages: 2, experts: 1, iterations: 5, syntheticSteps: 3, maxStart: 2, expertSample: 200 };
    const { merged, quotas, alones } = await checkAgainstPartitionsAlone('pdd-synth', raw, [260, 200], 40);
    expect(quotas).toEqual([23, 17]);
    expect(merged.indices).toHaveLength(40);
    const stages = Array.from(merged.stages!);
    expect(stages).toEqual([...stages].sort((a, b) => a - b));
    expect(new Set(stages)).toEqual(new Set([0, 1]));
    // The learned vectors too: stage s of the join is partition 0's stage-s vectors, then partition
    // 1's, bit for bit; k-means ids keep each partition's grouping and no id is shared by two partitions.
    const joined = merged.synthetic!;
    const own = alones.map((a) => a.synthetic!);
    expect(joined.classes).toBe('kmeans');
    expect(joined.labels).toHaveLength(own.reduce((n, v) => n + v.labels.length, 0));
    expect(Array.from(joined.stages)).toEqual([...joined.stages].sort((a, b) => a - b));
    const d = joined.dim;
    const labelsOfPartition = own.map(() => new Map<number, number>());
    let row = 0;
    for (const s of [0, 1])
      own.forEach((v, t) => {
        for (let r = 0; r < v.labels.length; r++) {
          if (v.stages[r] !== s) continue;
          expect(joined.stages[row]).toBe(s);
          expect(joined.vectors.subarray(row * d, (row + 1) * d)).toEqual(
            v.vectors.subarray(r * d, (r + 1) * d),
          );
          const seen = labelsOfPartition[t]!.get(v.labels[r]!);
          if (seen === undefined) labelsOfPartition[t]!.set(v.labels[r]!, joined.labels[row]!);
          else expect(joined.labels[row]).toBe(seen);
          row += 1;
        }
      });
    expect(row).toBe(joined.labels.length);
    const [first, second] = labelsOfPartition.map((m) => new Set(m.values()));
    expect([...first!].filter((l) => second!.has(l))).toEqual([]);
    for (const m of labelsOfPartition) expect(new Set(m.values()).size).toBe(m.size);
  });

  it('CRAIG and GRAFT: a schedule (epochs > 0) takes the quota form, the static subset the GreeDi form; curate methods says both', async () => {
    const graft = partitionedFormOf(getSelector('graft'), partitionedMethods()).partitioned;
    expect(isQuotaForm(formFor(graft, parse('graft', { epochs: 0 })))).toBe(false);
    expect(isQuotaForm(formFor(graft, parse('graft', { epochs: 50 })))).toBe(true);
    expect(isQuotaForm(formFor(graft, parse('graft', { mode: 'maxvol', epochs: 50 })))).toBe(false);
    for (const method of ['craig', 'adacore', 'augcoreset', 'graft'])
      expect(scaleModeOf(getSelector(method))).toMatch(/with a schedule \(epochs > 0\): each partition runs/);
    for (const method of ['crest', 'seta']) expect(scaleModeOf(getSelector(method))).toMatch(/concatenates/);
  });
});
