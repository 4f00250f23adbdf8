/**
 * Issue 22 case 8: NaN or Inf in an embedding row is never used silently.
 *
 * - Read side: a real workspace (the mini fixture embedded with the tiny CLIP) has 1, 2 or 100 rows of
 *   its `.image.npy` files overwritten with NaN/±Inf on disk. `loadEmbeddings` must leave exactly those
 *   samples out and name them, and facility location, k-center, herding and random must pick exactly
 *   what they pick when those samples were never in the pool (compared by sample id and key).
 * - Embed side: a real tiny-CLIP run whose encoder is wrapped to return NaN for one image: that sample
 *   becomes a `non-finite-embedding` issue and gets no stored row.
 * - Abort: herding and k-center on 20,000 × 64 unit vectors stop within a second of an abort that can
 *   only reach them if their loops let the event loop run (a timer, as a SIGINT handler would).
 */
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { embedCatalog, embeddingsDir } from '../../src/curate/embed.js';
import { describeExcluded, loadEmbeddings, type WorkspaceEmbeddings } from '../../src/curate/embeddings.js';
import { listParts, cataloguedSamples } from '../../src/curate/parts.js';
import { selectSubset } from '../../src/curate/pipeline.js';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import type { Encoder } from '../../src/embed/encoders/types.js';
import { parseNpyHeader, readInt64Npy, readNpy } from '../../src/embed/npy.js';
import { runSelector, SelectionInputError, type SelectInput } from '../../src/select/contract.js';
import { getSelector } from '../../src/select/registry.js';
import { denseColumns, FacilityLocation } from '../../src/select/submodular/facilityLocation.js';
import { maximize } from '../../src/select/submodular/optimizers.js';
import { captureCli } from '../support/cli.js';
import { MINI, MINI_COUNT, tempDir } from '../helpers.js';
import { embeddedMini } from '../support/miniWorkspace.js';

const METHODS = ['facility-location', 'k-center', 'herding', 'random'] as const;
const BUDGET = '20%';
const POISON = [NaN, Infinity, -Infinity];
const { curate } = captureCli();

interface StoredRow {
  id: bigint;
  key: string;
  shard: string;
  row: number;
}

let clean: string;
let model: string;
let rows: StoredRow[];

beforeAll(async () => {
  ({ workspace: clean, model } = await embeddedMini());
  const catalog = await Catalog.open(clean);
  try {
    rows = (
      await catalog.rows<StoredRow>(
        `SELECT s.id, s.key, e.shard, e."row" FROM embeddings e JOIN samples s ON s.id = e.sample_id
         ORDER BY e.shard, e."row"`,
      )
    ).map((r) => ({ ...r, id: BigInt(r.id) }));
  } finally {
    catalog.close();
  }
}, 60_000);

/** A copy of the clean workspace with `count` stored image rows overwritten (spread over the shards). */
async function corrupted(count: number): Promise<{ workspace: string; bad: StoredRow[] }> {
  const workspace = await tempDir({ forFile: true });
  cpSync(clean, workspace, { recursive: true });
  // Every 2nd row from the start: 100 rows cover the first shard (80 rows) entirely and part of the next.
  const bad = rows.filter((_, i) => i % 2 === 0 || count > rows.length / 2).slice(0, count);
  const byShard = new Map<string, StoredRow[]>();
  for (const r of bad) byShard.set(r.shard, [...(byShard.get(r.shard) ?? []), r]);
  for (const [shard, list] of byShard) {
    const file = path.join(embeddingsDir(workspace), `${shard}.image.npy`);
    const bytes = readFileSync(file);
    const { dtype, cols, dataOffset } = parseNpyHeader(bytes);
    expect(dtype).toBe('float32');
    list.forEach((r, t) => {
      // One poisoned value somewhere in the row (the rest stays a normal unit vector).
      const k = (t * 7) % cols;
      bytes.writeFloatLE(POISON[t % POISON.length]!, dataOffset + (r.row * cols + k) * 4);
    });
    writeFileSync(file, bytes);
  }
  return { workspace, bad };
}

async function load(workspace: string): Promise<WorkspaceEmbeddings> {
  const catalog = await Catalog.open(workspace);
  try {
    return await loadEmbeddings(catalog, workspace);
  } finally {
    catalog.close();
  }
}

/** The clean pool with the given samples dropped by hand: what "never in the pool" means. */
function withoutSamples(e: WorkspaceEmbeddings, drop: Set<bigint>): SelectInput & { ids: BigInt64Array } {
  const keep = [...e.ids.keys()].filter((i) => !drop.has(e.ids[i]!));
  const rowsOf = (m: Float32Array) => {
    const out = new Float32Array(keep.length * e.dim);
    keep.forEach((i, j) => out.set(m.subarray(i * e.dim, (i + 1) * e.dim), j * e.dim));
    return out;
  };
  const renumber = new Map<number, number>();
  const shards = Int32Array.from(keep, (i) => {
    const s = e.shards![i]!;
    if (!renumber.has(s)) renumber.set(s, renumber.size);
    return renumber.get(s)!;
  });
  return {
    n: keep.length,
    dim: e.dim,
    image: rowsOf(e.image!),
    text: rowsOf(e.text!),
    shards,
    payloadBytes: Float64Array.from(keep, (i) => e.payloadBytes![i]!),
    ids: BigInt64Array.from(keep, (i) => e.ids[i]!),
  };
}

describe.each([1, 2, 100])('%i non-finite image rows on disk', (count) => {
  let workspace: string;
  let bad: StoredRow[];
  beforeAll(async () => {
    ({ workspace, bad } = await corrupted(count));
  });

  it('loadEmbeddings leaves out exactly those samples and names them', async () => {
    const e = await load(workspace);
    expect(e.excluded.map((x) => x.id).sort()).toEqual(bad.map((r) => r.id).sort());
    expect(new Set(e.excluded.map((x) => x.key))).toEqual(new Set(bad.map((r) => r.key)));
    for (const x of e.excluded)
      expect(x.reason).toMatch(/^image embedding has 1 (NaN|infinite) of \d+ values$/);
    expect(e.n).toBe(MINI_COUNT - count);
    expect(e.image!.length).toBe(e.n * e.dim);
    expect(e.text!.length).toBe(e.n * e.dim);
    expect(e.ids.length).toBe(e.n);
    const badIds = new Set(bad.map((r) => r.id));
    expect([...e.ids].some((id) => badIds.has(id))).toBe(false);
    expect(e.image!.every(Number.isFinite)).toBe(true);
    const message = describeExcluded(e.excluded);
    expect(message).toContain(
      `excluded ${count} sample${count === 1 ? '' : 's'} with non-finite embeddings: `,
    );
    expect(message).toContain(e.excluded[0]!.key);
    if (count > 10) expect(message).toContain(`and ${count - 10} more`);
  });

  it.each(METHODS)('%s picks exactly what it picks with those samples never in the pool', async (method) => {
    const catalog = await Catalog.open(workspace);
    let stored;
    try {
      stored = await selectSubset(catalog, workspace, { method, budget: BUDGET, seed: 5 });
    } finally {
      catalog.close();
    }
    // Reference: the clean workspace's embeddings with the same samples dropped by hand.
    const reference = withoutSamples(await load(clean), new Set(bad.map((r) => r.id)));
    expect(stored.pool).toBe(reference.n);
    const selection = await runSelector(getSelector(method), reference, { fraction: 0.2 }, {}, { seed: 5 });
    const keyOf = new Map(rows.map((r) => [r.id, r.key]));
    const expectedIds = Array.from(selection.indices, (i) => reference.ids[i]!);
    expect(stored.sampleIds.map(BigInt)).toEqual(expectedIds);
    expect(stored.keys).toEqual(expectedIds.map((id) => keyOf.get(id)));
    const badKeys = new Set(bad.map((r) => r.key));
    expect(stored.keys.some((k) => badKeys.has(k))).toBe(false);
  });

  it('the CLI index and select run normally and leave those samples out', async () => {
    const index = await curate('-w', workspace, 'index');
    expect(index.code).toBe(0);
    const ids = Array.from(await readInt64Npy(path.join(workspace, 'index', 'image.ids.npy')), String);
    expect(ids).toHaveLength(MINI_COUNT - count);
    const badIds = new Set(bad.map((r) => String(r.id)));
    expect(ids.some((id) => badIds.has(id))).toBe(false);
    for (const method of ['herding', 'k-center']) {
      const run = await curate(
        '-w',
        workspace,
        'select',
        '--method',
        method,
        '--budget',
        '10%',
        '--name',
        `cli-${method}`,
      );
      expect(run.code).toBe(0);
    }
  });
});

describe('runSelector as a safety net', () => {
  it('refuses a non-finite row with a SelectionInputError naming the item, for every tower', async () => {
    const e = await load(clean);
    for (const tower of ['image', 'text'] as const) {
      const m = e[tower]!.slice();
      m[17 * e.dim + 3] = Infinity;
      const input = { n: e.n, dim: e.dim, image: e.image!, text: e.text!, [tower]: m };
      for (const method of ['herding', 'k-center']) {
        const run = runSelector(getSelector(method), input, { count: 10 }, { embedding: tower }, { seed: 0 });
        await expect(run).rejects.toThrow(SelectionInputError);
        await expect(run).rejects.toThrow(`${tower} embedding of item 17 is not finite (1 infinite of`);
      }
    }
  });

  it('herding called directly on a NaN pool fails with a clear message, not a bad index', async () => {
    const e = await load(clean);
    const image = e.image!.slice().fill(NaN, 0, e.dim);
    const herding = getSelector('herding');
    const run = herding.select({ n: e.n, dim: e.dim, image }, 10, herding.params.parse({}) as never, {
      seed: 0,
    });
    await expect(run).rejects.toThrow(/herding: scores are not finite/);
  });
});

/** The real tiny CLIP, except that the image whose bytes hash to `target` gets a NaN in its embedding. */
class PoisonOneImage implements Encoder {
  private readonly poisoned = new WeakSet<Float32Array>();
  constructor(
    private readonly inner: Encoder,
    private readonly target: string,
  ) {}
  get name() {
    return this.inner.name;
  }
  get fingerprint() {
    return this.inner.fingerprint;
  }
  get dim() {
    return this.inner.dim;
  }
  get provider() {
    return this.inner.provider;
  }
  async prepareImage(bytes: Buffer): Promise<Float32Array> {
    const prepared = await this.inner.prepareImage(bytes);
    if (createHash('sha1').update(bytes).digest('hex') === this.target) this.poisoned.add(prepared);
    return prepared;
  }
  async embedPrepared(batch: Float32Array[]): Promise<Float32Array> {
    const out = await this.inner.embedPrepared(batch);
    batch.forEach((p, i) => {
      if (this.poisoned.has(p)) out[i * this.dim + 1] = NaN;
    });
    return out;
  }
  embedTexts(texts: string[]): Promise<Float32Array> {
    return this.inner.embedTexts(texts);
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

describe('embed-time check', () => {
  it('a NaN image embedding becomes a named non-finite-embedding issue and no stored row', async () => {
    const workspace = await tempDir();
    const catalog = await Catalog.open(workspace);
    const inner = await ClipOnnxEncoder.load(model);
    try {
      await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
      const [part] = await listParts(catalog);
      let victim: { id: bigint; key: string; hash: string } | undefined;
      let seen = 0;
      for await (const s of cataloguedSamples(catalog, part!)) {
        if (seen++ !== 37) continue;
        victim = {
          id: BigInt(s.id),
          key: s.key,
          hash: createHash('sha1')
            .update(await s.image())
            .digest('hex'),
        };
        break;
      }
      const encoder = new PoisonOneImage(inner, victim!.hash);
      const report = await embedCatalog(catalog, workspace, encoder, { batchSize: 16 });
      expect(report.nonFinite).toBe(1);
      expect(report.undecodable).toBe(0);
      expect(report.samplesEmbedded).toBe(MINI_COUNT - 1);

      const issues = await catalog.rows<{
        key: string;
        kind: string;
        severity: string;
        reason: string;
        file: string;
      }>(`SELECT key, kind, severity, reason, file FROM issues WHERE kind = 'non-finite-embedding'`);
      expect(issues).toHaveLength(1);
      expect(issues[0]!.key).toBe(victim!.key);
      expect(issues[0]!.severity).toBe('error');
      expect(issues[0]!.reason).toMatch(/the image embedding has 1 NaN of \d+ values/);
      expect(issues[0]!.file).toBe(part!.path);

      const stored = await catalog.rows<{ n: number }>(
        'SELECT count(*)::INTEGER AS n FROM embeddings WHERE sample_id = $id',
        { id: victim!.id },
      );
      expect(stored[0]!.n).toBe(0);
      // Nothing non-finite reached the store's files.
      for (const f of readdirSync(embeddingsDir(workspace)).filter((f) => f.endsWith('.npy'))) {
        const m = await readNpy(path.join(embeddingsDir(workspace), f));
        expect(m.data.every(Number.isFinite), f).toBe(true);
      }
      const e = await loadEmbeddings(catalog, workspace);
      expect(e.n).toBe(MINI_COUNT - 1);
      expect(e.excluded).toEqual([]);
      expect([...e.ids]).not.toContain(victim!.id);

      // The shard is whole as recorded: a second run resumes without redoing anything.
      const again = await embedCatalog(catalog, workspace, encoder, { batchSize: 16 });
      expect(again.partsEmbedded).toBe(0);
      expect(again.partsUnchanged).toBe(3);
    } finally {
      await inner.dispose();
      catalog.close();
    }
  }, 60_000);
});

describe('abort', () => {
  const n = 20_000;
  const dim = 64;
  let pool: SelectInput;
  beforeAll(() => {
    const g = gaussian(seededRandom(22));
    const image = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let k = 0; k < dim; k++) sum += (image[i * dim + k] = g()) ** 2;
      for (let k = 0; k < dim; k++) image[i * dim + k]! /= Math.sqrt(sum);
    }
    pool = { n, dim, image };
  });

  // Budgets that take several seconds here unaborted (herding ~0.2 ms a pick, k-center ~2.7 s for 19k).
  it.each([
    ['herding', 15_000],
    ['k-center', 19_000],
  ] as const)('%s stops within a second of an abort, with the signal’s reason', async (method, budget) => {
    const controller = new AbortController();
    const reason = new Error('interrupted');
    let abortedAt = 0;
    // A timer, like a SIGINT handler, runs only if the selector's loop lets the event loop turn.
    setTimeout(() => {
      abortedAt = performance.now();
      controller.abort(reason);
    }, 400);
    const started = performance.now();
    const outcome = await runSelector(
      getSelector(method),
      pool,
      { count: budget },
      {},
      {
        seed: 1,
        signal: controller.signal,
      },
    ).then(
      () => 'finished',
      (err: unknown) => err,
    );
    const ended = performance.now();
    expect(outcome).toBe(reason);
    expect(abortedAt).toBeGreaterThan(0);
    expect(abortedAt - started).toBeLessThan(1000); // the timer was not starved by the loop
    expect(ended - abortedAt).toBeLessThan(1000);
  });

  it.each(['naive', 'lazy', 'stochastic'] as const)(
    'the %s greedy under facility location stops within a second of an abort',
    async (optimizer) => {
      // 2,000 items, dense similarities: the naive greedy alone would take minutes at this budget.
      const m = 2000;
      const s = new Float32Array(m * m);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < m; j++) {
          let dot = 0;
          for (let k = 0; k < 16; k++) dot += pool.image![i * dim + k]! * pool.image![j * dim + k]!;
          s[i * m + j] = dot;
        }
      const controller = new AbortController();
      const reason = new Error('interrupted');
      let abortedAt = 0;
      setTimeout(() => {
        abortedAt = performance.now();
        controller.abort(reason);
      }, 200);
      const started = performance.now();
      // Lazy and stochastic finish fast on this input; either way the timer must not be starved.
      const outcome = await maximize(new FacilityLocation(denseColumns(m, s)), optimizer, {
        budget: optimizer === 'naive' ? 1500 : 1999,
        signal: controller.signal,
      }).then(
        () => 'finished',
        (err: unknown) => err,
      );
      const ended = performance.now();
      if (outcome === 'finished') expect(ended - started).toBeLessThan(1200);
      else {
        expect(outcome).toBe(reason);
        expect(abortedAt - started).toBeLessThan(1000);
        expect(ended - abortedAt).toBeLessThan(1000);
      }
      if (optimizer === 'naive') expect(outcome).toBe(reason);
    },
  );

  it('herding with that budget really runs for seconds (so the abort above cut it short)', async () => {
    const time = async (count: number) => {
      const started = performance.now();
      await runSelector(getSelector('herding'), pool, { count }, {}, { seed: 1 });
      return performance.now() - started;
    };
    await time(10); // warm the kernel session, so the run below times herding alone
    expect(await time(15_000)).toBeGreaterThan(1500);
  });
});
