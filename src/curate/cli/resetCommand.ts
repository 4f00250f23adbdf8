/** `curate reset <what>`: remove derived state (embeddings, index, encoder fit, selections); see reset.ts. */
import { Argument, type Command } from 'commander';
import { resetWorkspace, RESET_TARGETS, type ResetTarget } from '../reset.js';
import { withCatalog, workspaceOf } from './context.js';

const NEXT: Record<ResetTarget, string> = {
  embeddings: 'run `curate embed` to embed again',
  index: 'run `curate index` to build it again',
  encoder: 'the next `curate embed` fits the offline encoder again',
  selections: 'run `curate select` to pick again',
  all: 'run `curate embed`, `curate index` and `curate select` again',
};

export function registerResetCommand(program: Command, out: (s: string) => void): void {
  program
    .command('reset')
    .description(
      'remove derived state so its step starts clean (datasets stay catalogued): embeddings (and the ' +
        'index built from them), index, encoder (the offline fit), selections, or all',
    )
    .addArgument(new Argument('<what>', 'what to remove').choices([...RESET_TARGETS]))
    .action(async (what: ResetTarget, _o: unknown, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      await withCatalog(workspace, async (catalog) => {
        const report = await resetWorkspace(workspace, what, { catalog });
        for (const dir of report.removed) out(`removed ${dir}\n`);
        const rows = Object.entries(report.rows).filter(([, n]) => n > 0);
        if (rows.length)
          out(
            `deleted catalog rows: ${rows.map(([t, n]) => `${n.toLocaleString('en-US')} ${t}`).join(', ')}\n`,
          );
        if (report.removed.length === 0 && rows.length === 0) out(`nothing to reset (${what})\n`);
        else out(`${NEXT[what]}\n`);
      });
    });
}
