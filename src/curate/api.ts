/**
 * The public API of clipcurate. The `curate` CLI and the VS Code extension call only this module.
 */
import path from 'node:path';
import { PACKAGE_ROOT } from '../embed/env.js';
import { Catalog } from './catalog.js';

export { Catalog, CATALOG_FILE, type CatalogSummary, type IssueCount } from './catalog.js';
export { addDataset, type AddDatasetOptions, type IngestProgress, type IngestReport } from './ingest.js';
export { DatasetError, ISSUE_KINDS, type IssueKind } from '../embed/readers/types.js';

export { PACKAGE_ROOT } from '../embed/env.js';

export const DEFAULT_WORKSPACE = '.curate';

/** The bundled demo dataset: real CIFAR-10 images with web-style noisy captions. */
export const DEMO_DATASET = path.join(PACKAGE_ROOT, 'data', 'demo', 'cifar10-captions-{0000..0001}.tar.gz');

/** Open (creating if needed) a workspace folder and its catalog. Close it when done. */
export function openWorkspace(dir: string = DEFAULT_WORKSPACE): Promise<Catalog> {
  return Catalog.open(path.resolve(dir));
}
