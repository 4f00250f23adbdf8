import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSchedule, roundAt, writeSchedule } from '../../src/curate/schedule.js';
import { writeProxySignals } from '../../src/curate/signals.js';
import { readNpy } from '../../src/embed/npy.js';
import { runSelector } from '../../src/select/contract.js';
import { getSelector } from '../../src/select/registry.js';
import { tempDir } from '../helpers.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

describe('schedule files (docs/schedules.md)', () => {
  it('a CRAIG schedule round-trips: keys, mean-1 weights from raw counts, rounds by training progress', async () => {
    const { x, labels } = gaussianClasses(900, 8, 3, 1, 1.5);
    const s = await runSelector(
      getSelector('craig'),
      { n: 900, dim: 8, image: x.data, labels },
      { count: 30 },
      { mode: 'gradients', epochs: 3, lag: 1 },
      { seed: 0 },
    );
    const file = path.join(await tempDir(), 'out', 'schedule.jsonl');
    await writeSchedule(file, s.schedule!, (i) => `sample-${i}`, {
      method: 'craig',
      provenance: { seed: 0 },
    });
    const { header, rounds } = await readSchedule(file);
    expect(header).toMatchObject({
      method: 'craig',
      unit: 'epoch',
      total: 3,
      rounds: 3,
      provenance: { seed: 0 },
    });
    s.schedule!.rounds.forEach((r, t) => {
      const line = rounds[t]!;
      expect(line.keys).toEqual(Array.from(r.indices, (i) => `sample-${i}`));
      expect(line.counts).toEqual(Array.from(r.weights!));
      const mean = line.weights.reduce((a, b) => a + b, 0) / line.weights.length;
      expect(mean).toBeCloseTo(1, 10);
      line.weights.forEach((w, k) =>
        expect(w / line.weights[0]!).toBeCloseTo(line.counts![k]! / line.counts![0]!, 10),
      );
    });
    expect(roundAt(rounds, 0).round).toBe(0);
    expect(roundAt(rounds, 0.5).round).toBe(1);
    expect(roundAt(rounds, 0.99).round).toBe(2);
    expect(roundAt(rounds, 1).round).toBe(2);
  });

  it('refuses files that are not schedules or lost rounds, naming the file and line', async () => {
    const dir = await tempDir();
    const bad = path.join(dir, 'bad.jsonl');
    await writeFile(bad, '{"format":"something-else"}\n');
    await expect(readSchedule(bad)).rejects.toThrow(/bad\.jsonl:1: not a clipcurate-schedule file/);
    const good = path.join(dir, 'good.jsonl');
    await writeSchedule(
      good,
      { unit: 'epoch', total: 2, rounds: [{ start: 0, end: 1, indices: Int32Array.of(3, 1) }] },
      String,
      {
        method: 'seta',
      },
    );
    const text = await readFile(good, 'utf8');
    await writeFile(bad, text.split('\n')[0] + '\n');
    await expect(readSchedule(bad)).rejects.toThrow(/announces 1 rounds, found 0/);
    const { rounds } = await readSchedule(good);
    expect(rounds[0]).toMatchObject({ keys: ['3', '1'], weights: [1, 1] });
    expect(rounds[0]!.counts).toBeUndefined();
  });
});

describe('proxy signal export', () => {
  it('writes per-example losses and logit gradients that match the definition ℓ = −log p_y, g = p − e_y', async () => {
    const { x, labels } = gaussianClasses(700, 8, 4, 2, 1.2);
    const dir = path.join(await tempDir(), 'signals');
    const files = await writeProxySignals(dir, { n: 700, dim: 8, image: x.data, labels }, { epochs: 1 });
    const losses = await readNpy(files.losses);
    const gradients = await readNpy(files.gradients);
    const meta = JSON.parse(await readFile(files.meta, 'utf8')) as { labels: number[]; classSource: string };
    expect([losses.rows, losses.cols, gradients.rows, gradients.cols]).toEqual([700, 1, 700, 4]);
    expect(meta.classSource).toBe('labels');
    expect(meta.labels).toEqual(Array.from(labels));
    for (let i = 0; i < 700; i++) {
      const g = gradients.data.subarray(i * 4, i * 4 + 4);
      expect(g.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 5); // Σ_c (p_c − e_yc) = 1 − 1
      const py = g[labels[i]!]! + 1;
      expect(py).toBeGreaterThan(0);
      expect(losses.data[i]).toBeCloseTo(-Math.log(py), 4);
      g.forEach((v, c) =>
        c === labels[i] ? expect(v).toBeLessThanOrEqual(0) : expect(v).toBeGreaterThanOrEqual(0),
      );
    }
  });
});
