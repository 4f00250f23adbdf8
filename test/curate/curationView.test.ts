import { existsSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/api.js';
import {
  embeddedCount,
  embeddedIdsAt,
  loadEmbeddings,
  type WorkspaceEmbeddings,
} from '../../src/curate/embeddings.js';
import type { StoredSelection } from '../../src/curate/selections.js';
import { CurationView } from '../../src/curate/view.js';
import { MINI_COUNT } from '../helpers.js';
import { miniWorkspace } from '../support/miniWorkspace.js';

let workspace: string;
let model: string;
let stored: StoredSelection;
let embeddings: WorkspaceEmbeddings;
let view: CurationView;

beforeAll(async () => {
  ({ workspace, model, stored } = await miniWorkspace());
  const catalog = await Catalog.open(workspace);
  embeddings = await loadEmbeddings(catalog, workspace);
  catalog.close();
  view = await CurationView.open(workspace, { encoder: model, mapPoints: 200 });
});

afterAll(async () => {
  await view.close();
});

function cosine(a: number, b: number): number {
  const { dim, image } = embeddings;
  const ra = embeddings.ids.indexOf(BigInt(a));
  const rb = embeddings.ids.indexOf(BigInt(b));
  let dot = 0;
  for (let k = 0; k < dim; k++) dot += image![ra * dim + k]! * image![rb * dim + k]!;
  return dot;
}

describe('CurationView: what the panel shows, from a real workspace', () => {
  it('opens on the newest selection and summarises the workspace', async () => {
    const s = await view.summary();
    expect(s.samples).toBe(MINI_COUNT);
    expect(s.selection).toBe(stored.name);
    expect(s.method).toBe('clip-score');
    expect(s.budget).toBe(stored.sampleIds.length);
    expect(s.embedded).toBe(true);
    expect(s.captionKinds.length).toBeGreaterThan(0);
  });

  it('serves grid pages with decodable 96 px WebP thumbnails, cached in the catalog', async () => {
    const page = await view.page({ sort: 'score-desc', offset: 10, limit: 12 });
    expect(page.total).toBe(MINI_COUNT);
    expect(page.items).toHaveLength(12);
    for (const item of page.items) {
      expect(item.problem).toBeNull();
      const bytes = Buffer.from(item.thumbnail!.replace('data:image/webp;base64,', ''), 'base64');
      const meta = await sharp(bytes).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['webp', 96, 96]);
    }
    // A miss fills the whole archive: the mini shards hold 80 samples each.
    const [{ n }] = (await view.withCatalog((catalog) =>
      catalog.rows<{ n: number }>('SELECT count(*)::INTEGER AS n FROM thumbnails'),
    )) as [{ n: number }];
    expect(n).toBeGreaterThanOrEqual(80);
    const again = await view.page({ sort: 'score-desc', offset: 10, limit: 12 });
    expect(again.items.map((i) => i.thumbnail)).toEqual(page.items.map((i) => i.thumbnail));
  });

  it('neighbours come from the HNSW index: itself left out, most similar first, matching brute force', async () => {
    const id = Number(embeddings.ids[17]);
    const found = await view.neighbours(id, 8);
    expect(found).toHaveLength(8);
    expect(found.some((f) => f.id === id)).toBe(false);
    const sims = found.map((f) => f.similarity!);
    expect(sims.every((s, i) => i === 0 || s <= sims[i - 1]! + 1e-6)).toBe(true);
    const brute = Array.from(embeddings.ids, Number)
      .filter((other) => other !== id)
      .map((other) => ({ other, sim: cosine(id, other) }))
      .sort((a, b) => b.sim - a.sim);
    expect(found[0]!.id).toBe(brute[0]!.other);
    expect(found[0]!.similarity).toBeCloseTo(brute[0]!.sim, 4);
    expect(found.every((f) => f.thumbnail?.startsWith('data:image/webp'))).toBe(true);
    expect(existsSync(path.join(workspace, 'index', 'image.json'))).toBe(true);
  });

  it('free-text search embeds the query with the workspace encoder and ranks images by similarity', async () => {
    const hits = await view.search('a photo of a ship', 10);
    expect(hits).toHaveLength(10);
    const sims = hits.map((h) => h.similarity!);
    expect(sims.every((s, i) => i === 0 || s <= sims[i - 1]! + 1e-6)).toBe(true);
    expect(new Set(hits.map((h) => h.id)).size).toBe(10);
  });

  it('maps a seeded sample with UMAP into the unit square, coloured by the selection, and caches it', async () => {
    const map = await view.map();
    expect(map.ids).toHaveLength(200);
    expect(map.total).toBe(MINI_COUNT);
    expect(new Set(map.ids).size).toBe(200);
    for (const v of [...map.x, ...map.y]) expect(v >= 0 && v <= 1).toBe(true);
    expect(Math.min(...map.x)).toBe(0);
    expect(Math.max(...map.y)).toBe(1);
    const picked = new Set(stored.sampleIds);
    expect(map.state).toEqual(map.ids.map((id) => (picked.has(id) ? 1 : 0)));
    expect(new Set(map.cluster).size).toBeGreaterThan(1);
    // Neighbours in embedding space stay closer on the map than random pairs do.
    const at = new Map(map.ids.map((id, i) => [id, i]));
    let near = 0;
    let far = 0;
    let pairs = 0;
    for (const [i, id] of map.ids.entries()) {
      const best = map.ids.filter((o) => o !== id).reduce((a, b) => (cosine(id, a) > cosine(id, b) ? a : b));
      const j = at.get(best)!;
      const r = (i * 7919 + 13) % map.ids.length;
      near += Math.hypot(map.x[i]! - map.x[j]!, map.y[i]! - map.y[j]!);
      far += Math.hypot(map.x[i]! - map.x[r]!, map.y[i]! - map.y[r]!);
      pairs++;
    }
    expect(near / pairs).toBeLessThan(0.5 * (far / pairs));
    expect(readdirSync(path.join(workspace, 'map'))).toHaveLength(1);
    const again = await view.map();
    expect([again.x, again.y]).toEqual([map.x, map.y]);
    // A cached map reads no embedding file: with the store's .npy files moved away it still comes back.
    const store = path.join(workspace, 'embeddings');
    const files = readdirSync(store).filter((f) => f.endsWith('.npy'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) renameSync(path.join(store, f), path.join(store, `${f}.away`));
    try {
      expect((await view.map()).ids).toEqual(map.ids);
    } finally {
      for (const f of files) renameSync(path.join(store, `${f}.away`), path.join(store, f));
    }
  });

  it('finds the ids of sampled rows in the catalog, as loadEmbeddings numbers the rows', async () => {
    const catalog = await Catalog.open(workspace);
    try {
      const positions = [0, 1, 17, embeddings.n - 1];
      expect(await embeddedIdsAt(catalog, embeddings.encoder.fingerprint, positions)).toEqual(
        positions.map((p) => embeddings.ids[p]),
      );
      expect((await embeddedCount(catalog, workspace)).count).toBe(embeddings.n);
    } finally {
      catalog.close();
    }
  });

  it('histograms the scores: picked and not picked add up to the pool', async () => {
    const h = (await view.histogram(20))!;
    expect(h.selected).toHaveLength(20);
    const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
    expect(sum(h.selected)).toBe(stored.sampleIds.length);
    expect(sum(h.selected) + sum(h.unselected)).toBe(embeddings.n);
    // clip-score keeps the top scores: no unpicked sample sits above the lowest picked bin.
    const lowestPicked = h.selected.findIndex((c) => c > 0);
    expect(h.unselected.slice(lowestPicked + 1).every((c) => c === 0)).toBe(true);
  });

  it('accepts and rejects by id: persisted in the catalog, shown in pages and on the map', async () => {
    const [first, second] = stored.sampleIds;
    expect(await view.review([first!], 'reject')).toBe(1);
    expect(await view.review([second!], 'accept')).toBe(1);
    const rejected = await view.page({ filter: 'rejected' });
    expect(rejected.items.map((i) => i.id)).toEqual([first]);
    expect((await view.summary()).reviews).toEqual({ accept: 1, reject: 1 });
    const map = await view.map();
    const state = new Map(map.ids.map((id, i) => [id, map.state[i]]));
    if (state.has(first!)) expect(state.get(first!)).toBe(3);
    if (state.has(second!)) expect(state.get(second!)).toBe(2);
    await view.review([first!, second!], null);
    expect((await view.summary()).reviews).toEqual({ accept: 0, reject: 0 });
  });

  it('switches to the bare catalog and back', async () => {
    await view.useSelection(null);
    expect((await view.page({ filter: 'selected' })).total).toBe(0);
    await view.useSelection(stored.name);
    expect((await view.page({ filter: 'selected' })).total).toBe(stored.sampleIds.length);
  });
});
