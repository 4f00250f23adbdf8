/** A real workspace for panel tests: the mini CIFAR fixture read, embedded with the tiny CLIP, one selection. */
import path from 'node:path';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { embedCatalog } from '../../src/curate/embed.js';
import { selectSubset } from '../../src/curate/pipeline.js';
import type { StoredSelection } from '../../src/curate/selections.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { MINI, tempDir } from '../helpers.js';
import { writeTinyClip } from './tinyClip.js';

export interface MiniWorkspace {
  workspace: string;
  /** The tiny CLIP folder the workspace was embedded with (for text search). */
  model: string;
  stored: StoredSelection;
}

/** The mini fixture read into a fresh workspace and embedded with the tiny CLIP (catalog closed). */
export async function embeddedMini(): Promise<Omit<MiniWorkspace, 'stored'>> {
  const workspace = await tempDir({ forFile: true });
  const model = await writeTinyClip(path.join(await tempDir({ forFile: true }), 'tiny'));
  const catalog = await Catalog.open(workspace);
  try {
    await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    const encoder = await ClipOnnxEncoder.load(model);
    await embedCatalog(catalog, workspace, encoder);
    await encoder.dispose();
    return { workspace, model };
  } finally {
    catalog.close();
  }
}

export async function miniWorkspace(method = 'clip-score', budget = '25%'): Promise<MiniWorkspace> {
  const { workspace, model } = await embeddedMini();
  const catalog = await Catalog.open(workspace);
  try {
    return { workspace, model, stored: await selectSubset(catalog, workspace, { method, budget }) };
  } finally {
    catalog.close();
  }
}
