/** `curate review`: accept or reject samples by key by hand; every export respects it (reviews.ts). */
import { Argument, type Command } from 'commander';
import { listReviews, setReview, type ReviewDecision } from '../api.js';
import { withCatalog, workspaceOf } from './context.js';
import { printable } from './escape.js';
import { UsageError } from './options.js';

const ACTIONS = ['accept', 'reject', 'clear', 'list'] as const;

export function registerReviewCommands(program: Command, out: (text: string) => void): void {
  program
    .command('review')
    .description(
      'accept or reject samples by key (exports leave rejected picks out and add accepted samples)',
    )
    .addArgument(new Argument('<action>', 'what to do').choices([...ACTIONS]))
    .argument('[keys...]', 'sample keys (accept, reject, clear)')
    .action(async (action: (typeof ACTIONS)[number], keys: string[], _o: unknown, cmd: Command) => {
      await withCatalog(workspaceOf(cmd), async (catalog) => {
        if (action === 'list') {
          for (const r of await listReviews(catalog)) out(`${r.decision}\t${printable(r.key)}\t${r.at}\n`);
          return;
        }
        if (keys.length === 0) throw new UsageError(`review ${action} needs at least one key`);
        const decision: ReviewDecision | null = action === 'clear' ? null : action;
        const n = await setReview(catalog, keys, decision);
        out(`${action === 'clear' ? 'cleared' : `${action}ed`} ${n} sample${n === 1 ? '' : 's'}\n`);
      });
    });
}
