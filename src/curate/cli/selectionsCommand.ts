/**
 * `curate selections list | rm`: what `select` and `compare` saved, and removing it. Compare runs keep
 * their selections as `<run>/<method>-<budget>`; `rm <run>` removes all of a run's selections.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { comparisonsDir } from '../pipeline.js';
import { listSelectionInfo, removeSelections } from '../selections.js';
import { withCatalog, workspaceOf } from './context.js';
import { printable } from './escape.js';
import { formatSelections } from './status.js';

export function registerSelectionsCommand(program: Command, out: (text: string) => void): void {
  const selections = program
    .command('selections')
    .description(
      'list or remove saved selections (curate select, and compare runs as <run>/<method>-<budget>)',
    );

  selections
    .command('list', { isDefault: true })
    .description('every saved selection: name, method, budget, size, when, and where it picked from')
    .action(async (_o: object, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      // Read-only, like status: a missing workspace is an error, never created.
      const list = await withCatalog(workspace, () => listSelectionInfo(workspace), { readOnly: true });
      out(formatSelections(list, 'selections').join('\n') + '\n');
    });

  selections
    .command('rm')
    .description(
      'remove saved selections (a compare run name removes the whole run: its selections and tables)',
    )
    .argument('<name...>', 'selection names, as curate selections list shows them')
    .action(async (names: string[], _o: object, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      // With the catalog held: no select or export of this workspace runs meanwhile.
      const removed = await withCatalog(workspace, async () => {
        const dirs = await removeSelections(workspace, names);
        // A whole compare run goes with its tables: they name selections that are no longer there.
        for (const name of names.filter((n) => !n.includes('/'))) {
          const tables = path.join(comparisonsDir(workspace), name);
          if (!existsSync(tables)) continue;
          const aside = `${tables}.tmp-rm-${randomBytes(4).toString('hex')}`;
          await rename(tables, aside);
          await rm(aside, { recursive: true, force: true });
          dirs.push(tables);
        }
        return dirs;
      });
      for (const dir of removed) out(`removed ${printable(dir)}\n`);
    });
}
