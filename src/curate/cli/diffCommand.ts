/**
 * `curate diff SEL_A SEL_B`: what two saved selections kept differently and why (diff.ts): the counts,
 * the breakdown by the dataset's own ground truth where its metadata has some, and the first rows of
 * each side with each method's reason. `--json` writes the whole difference.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../io/atomic.js';
import { diffSelections, type DiffItem, type SelectionDiff } from '../diff.js';
import { withCatalog, workspaceOf } from './context.js';
import { printable } from './escape.js';
import { integerOption, LIMITS } from './options.js';

interface DiffOptions {
  limit: number;
  json?: string;
}

export function registerDiffCommand(program: Command, out: (text: string) => void): void {
  program
    .command('diff')
    .description(
      'compare two saved selections: kept by both or by one only, why each method kept or dropped them, ' +
        'and the ground truth from dataset metadata where there is some',
    )
    .argument('<selectionA>', 'a saved selection, as curate selections list shows it')
    .argument('<selectionB>', 'another saved selection')
    .addOption(integerOption('--limit <n>', 'rows shown for each side', LIMITS.limit, 10))
    .option('--json <file>', 'also write the whole difference (every row) as JSON')
    .action(async (a: string, b: string, o: DiffOptions, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      const diff = await withCatalog(workspace, (catalog) => diffSelections(catalog, workspace, a, b), {
        readOnly: true,
      });
      out(formatDiff(diff, o.limit));
      if (o.json) {
        await writeFileAtomic(path.resolve(o.json), JSON.stringify(diff, null, 2) + '\n');
        out(`wrote ${printable(o.json)}\n`);
      }
    });
}

/** The report `curate diff` prints; every dataset or method text is escaped. */
export function formatDiff(d: SelectionDiff, limit: number): string {
  const side = (s: SelectionDiff['a']) => `${printable(s.name)} (${printable(s.method)}, ${s.kept} kept)`;
  const lines = [
    `${side(d.a)} vs ${side(d.b)}`,
    `  kept by both: ${d.both}`,
    `  only by A (${printable(d.a.name)}): ${d.onlyA.length}`,
    `  only by B (${printable(d.b.name)}): ${d.onlyB.length}`,
  ];
  if (d.truth.length) {
    lines.push('', 'ground truth from dataset metadata:');
    const counts = (c: Record<string, number>) =>
      Object.entries(c)
        .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
        .map(([v, n]) => `${printable(v)} ${n}`)
        .join(', ') || '-';
    for (const t of d.truth) {
      lines.push(`  ${t.field}`, `    only A: ${counts(t.onlyA)}`, `    only B: ${counts(t.onlyB)}`);
    }
  }
  for (const [label, items] of [
    [`only in A (${printable(d.a.name)})`, d.onlyA],
    [`only in B (${printable(d.b.name)})`, d.onlyB],
  ] as const) {
    if (items.length === 0) continue;
    const shown = items.slice(0, limit);
    lines.push(
      '',
      `${label}: ${shown.length < items.length ? `first ${shown.length} of ` : ''}${items.length}`,
    );
    for (const it of shown) lines.push(...formatItem(it));
  }
  return lines.join('\n') + '\n';
}

function formatItem(it: DiffItem): string[] {
  const truth = Object.entries(it.groundTruth)
    .map(([f, v]) => `${f}=${printable(v ?? '-')}`)
    .join(' ');
  return [
    `  ${printable(it.key)}  "${printable(it.caption)}"${truth ? `  [${truth}]` : ''}`,
    `      A: ${printable(it.reasonA ?? '(no reason recorded)')}`,
    `      B: ${printable(it.reasonB ?? '(no reason recorded)')}`,
  ];
}
