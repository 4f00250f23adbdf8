import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addDataset, Catalog, embedCatalog } from '../../src/curate/api.js';
import { loadEmbeddings } from '../../src/curate/embeddings.js';
import { WorkspaceIndex } from '../../src/curate/searchIndex.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { topKInnerProduct } from '../../src/select/kernels/similarity.js';
import { MINI, MINI_COUNT, tempDir } from '../helpers.js';
import { writeTinyClip } from '../support/tinyClip.js';

describe('workspace embeddings and index', () => {
  it('loads embeddings in catalog order with labels, builds, saves, reloads and searches the index', async () => {
    const workspace = await tempDir();
    const model = await writeTinyClip(path.join(workspace, 'model'));
    const catalog = await Catalog.open(workspace);
    await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    const encoder = await ClipOnnxEncoder.load(model);
    await embedCatalog(catalog, workspace, encoder);

    const e = await loadEmbeddings(catalog, workspace, { labelField: 'label_index' });
    expect(e.n).toBe(MINI_COUNT);
    expect(Array.from(e.ids)).toEqual([...e.ids].sort((a, b) => (a < b ? -1 : 1)));
    const [first] = await catalog.rows<{ label: number }>(
      `SELECT (metadata->>'label_index')::INTEGER AS label FROM samples ORDER BY id LIMIT 1`,
    );
    expect(e.labels![0]).toBe(first!.label);

    await WorkspaceIndex.build(catalog, workspace, 'image', { embeddings: e, efSearch: 200 });
    const index = await WorkspaceIndex.load(workspace, 'image');
    // An item's nearest neighbour is itself.
    const hits = await index.nearest(catalog, e.image!.subarray(5 * e.dim, 6 * e.dim), 3);
    expect(hits[0]).toMatchObject({ id: e.ids[5] });
    expect(hits[0]!.similarity).toBeCloseTo(1, 4);

    // Free-text search agrees with an exact search over the same embeddings.
    const query = await encoder.embedTexts(['a small red truck']);
    const exact = await topKInnerProduct(
      { rows: 1, cols: e.dim, data: query },
      { rows: e.n, cols: e.dim, data: e.image! },
      10,
    );
    const found = await index.searchText(catalog, encoder, 'a small red truck', 10);
    const overlap = found.filter((h) => Array.from(exact.indices).some((i) => e.ids[i] === h.id)).length;
    expect(overlap).toBeGreaterThanOrEqual(9);
    expect(found[0]!.caption.length).toBeGreaterThan(0);
    catalog.close();
  });
});
