/** Which schedule round is in force at a training progress (docs/schedules.md, "Which round when"). */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  readSchedule,
  roundAt,
  roundInForce,
  scheduleKeys,
  writeSchedule,
} from '../../src/curate/schedule.js';
import { tempDir } from '../helpers.js';

/** CREST-like: a warm-up epoch of 10, then rounds shorter than an epoch (40 steps, 4 per epoch). */
const crestLike = [
  { round: 0, start: 0.1, end: 0.175, keys: ['a', 'b', 'a'], weights: [1.5, 1, 0.5] },
  { round: 1, start: 0.175, end: 0.2, keys: ['c'], weights: [1] },
  { round: 2, start: 0.2, end: 1, keys: ['b', 'd'], weights: [1, 1] },
];

describe('roundInForce', () => {
  it('is the last round started: none during the warm-up, short rounds found at every step', () => {
    expect(roundInForce(crestLike, 0)).toBeUndefined();
    expect(roundInForce(crestLike, 0.0999)).toBeUndefined();
    expect(roundInForce(crestLike, 0.1)?.round).toBe(0);
    // Step 7 of 40 falls in round 1 (steps 7…7): a per-epoch lookup (0.1, 0.2, …) would never see it.
    const perStep = Array.from({ length: 40 }, (_, t) => roundInForce(crestLike, t / 40)?.round ?? -1);
    expect(perStep.slice(0, 9)).toEqual([-1, -1, -1, -1, 0, 0, 0, 1, 2]);
    expect(new Set(perStep)).toEqual(new Set([-1, 0, 1, 2]));
    const perEpoch = Array.from({ length: 10 }, (_, e) => roundInForce(crestLike, e / 10)?.round ?? -1);
    expect(perEpoch).not.toContain(1);
    expect(roundInForce(crestLike, 1)?.round).toBe(2);
  });

  it('keeps the earlier round across a gap; refuses progress outside [0, 1]', () => {
    const gapped = [
      { start: 0, end: 0.3 },
      { start: 0.5, end: 1 },
    ];
    expect(roundInForce(gapped, 0.4)).toBe(gapped[0]);
    expect(() => roundInForce(gapped, -0.1)).toThrow(/progress -0.1 is outside \[0, 1\]/);
    expect(() => roundInForce(gapped, Number.NaN)).toThrow(/outside/);
    expect(() => roundInForce([], 0)).toThrow(/no rounds/);
  });

  it('roundAt refuses the warm-up instead of falling back to the last round', () => {
    expect(() => roundAt(crestLike, 0.05)).toThrow(/warm-up before the first round \(starts at 0.1\)/);
    expect(roundAt(crestLike, 0.5).round).toBe(2);
  });
});

describe('schedule keys and checks', () => {
  it('scheduleKeys lists every key once, in order of first appearance', () => {
    expect(scheduleKeys(crestLike)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('readSchedule refuses rounds out of order, outside [0, 1] or without one weight per key', async () => {
    const dir = await tempDir();
    const good = path.join(dir, 'good.jsonl');
    await writeSchedule(
      good,
      {
        unit: 'step',
        total: 40,
        rounds: [
          { start: 0.1, end: 0.5, indices: Int32Array.of(1, 2, 1), weights: Float32Array.of(2, 1, 1) },
          { start: 0.5, end: 1, indices: Int32Array.of(3) },
        ],
      },
      (i) => `k${i}`,
      { method: 'crest' },
    );
    const { rounds } = await readSchedule(good);
    expect(rounds[0]).toMatchObject({ keys: ['k1', 'k2', 'k1'], weights: [1.5, 0.75, 0.75] });
    const [header, first, second] = (await readFile(good, 'utf8')).trim().split('\n');
    const bad = path.join(dir, 'bad.jsonl');
    const edit = (line: string, change: Record<string, unknown>) =>
      JSON.stringify({ ...JSON.parse(line), ...change });
    await writeFile(bad, [header, second, first].join('\n'));
    await expect(readSchedule(bad)).rejects.toThrow(
      /bad\.jsonl:3: round 0 starts at 0.1, before the previous round/,
    );
    await writeFile(bad, [header, edit(first!, { end: 1.5 }), second].join('\n'));
    await expect(readSchedule(bad)).rejects.toThrow(/bad\.jsonl:2: round 0 spans \[0.1, 1.5\)/);
    await writeFile(bad, [header, edit(first!, { weights: [1] }), second].join('\n'));
    await expect(readSchedule(bad)).rejects.toThrow(/bad\.jsonl:2: round 0 needs one weight per key/);
  });
});
