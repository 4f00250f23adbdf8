/**
 * The demo's steps after embedding: index → every method at 10% (compare, which saves each selection)
 * → the comparison table. The bundled sample has CIFAR-10 labels (`label_index`) and ground truth for
 * caption noise and duplicates, so the table shows what each method keeps.
 */
import cliProgress from 'cli-progress';
import type { Catalog } from '../api.js';
import { compareMethods, type Comparison } from '../pipeline.js';
import { WorkspaceIndex } from '../searchIndex.js';
import { registry } from '../../select/registry.js';
import { formatComparison } from './selectCommands.js';

export const DEMO_BUDGET = '10%';
export const DEMO_LABEL_FIELD = 'label_index';

export async function runDemoSelection(
  catalog: Catalog,
  workspace: string,
  out: (text: string) => void,
): Promise<Comparison> {
  const index = await WorkspaceIndex.build(catalog, workspace, 'image');
  out(`image index of ${index.ids.length} samples → ${WorkspaceIndex.dir(workspace)}\n\n`);
  const methods = [...registry.keys()];
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: ' select [{bar}] {value}/{total} methods | {method}',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(methods.length, 0, { method: '' });
  const comparison = await compareMethods(catalog, workspace, {
    methods,
    budget: DEMO_BUDGET,
    labelField: DEMO_LABEL_FIELD,
    onMethod: (method, done) => bar.update(done, { method }),
  });
  bar.stop();
  out(formatComparison(comparison, DEMO_BUDGET) + '\n');
  return comparison;
}
