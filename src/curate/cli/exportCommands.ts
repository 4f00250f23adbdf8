/**
 * `curate export | report`: write a saved selection out as shards / manifests / keys, and the HTML run
 * report from saved comparisons and selections. The work is done by the API (export/, runReport.ts).
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import {
  ExportInputError,
  EXPORT_FORMATS,
  exportSelection,
  writeRunReport,
  type Catalog,
  type Comparison,
  type ExportFormat,
  type ExportReport,
} from '../api.js';
import { SelectionInputError } from '../../select/contract.js';
import { comparisonFile, listCompareRuns, readComparisonFile } from '../pipeline.js';
import { interruptible, withCatalog, workspaceOf } from './context.js';
import { printable, warn } from './escape.js';
import { integerOption, LIMITS } from './options.js';
import { countBar, type ProgressLine } from './progress.js';

export function registerExportCommands(program: Command, out: (text: string) => void): void {
  program
    .command('export')
    .description('write a saved selection out: WebDataset shards, a manifest, or a key list')
    .requiredOption('--selection <name>', 'saved selection (see the workspace selections/ folder)')
    .addOption(
      new Option('--format <format>', 'what to write').choices([...EXPORT_FORMATS]).default('webdataset'),
    )
    .requiredOption('--out <dir>', 'folder to write into (nothing is written outside it)')
    .option('--overwrite', 'replace the previous export in a non-empty folder')
    .addOption(integerOption('--shard-size <n>', 'samples per WebDataset shard', LIMITS.shardSize, 10_000))
    .action(
      async (
        o: { selection: string; format: ExportFormat; out: string; overwrite?: boolean; shardSize: number },
        cmd: Command,
      ) => {
        const workspace = workspaceOf(cmd);
        await withCatalog(workspace, (catalog) =>
          interruptible(async (signal) => {
            const report = await exportWithProgress(catalog, workspace, o.selection, {
              format: o.format,
              out: o.out,
              overwrite: o.overwrite ?? false,
              shardSize: o.shardSize,
              signal,
            });
            out(formatExport(report));
            if (report.samples === 0 && report.skipped.length > 0)
              throw new ExportInputError(`nothing exported: all ${report.picks} picks were skipped`);
          }),
        );
      },
    );

  program
    .command('report')
    .description('write the HTML report from saved compare runs (curate compare) and selections')
    .option('--compare <run,…>', 'compare runs to include (see curate status; several must share one pool)')
    .option('--budget <n|p%,…>', 'only these budgets of the runs (alone: the one run that has them)')
    .option('--selections <a,b,…>', 'selections to show (default: those of the first comparison)')
    .option('--name <name>', 'report folder under <workspace>/reports/', 'report')
    .option('--title <text>', 'page title')
    .action(
      async (
        o: { compare?: string; budget?: string; selections?: string; name: string; title?: string },
        cmd: Command,
      ) => {
        const workspace = workspaceOf(cmd);
        const comparisons = await savedComparisons(workspace, list(o.compare), list(o.budget));
        const selections = list(o.selections);
        if (!comparisons.length && !selections?.length)
          throw new SelectionInputError(
            'report needs --compare <run>, --budget (saved comparisons) or --selections',
          );
        await withCatalog(workspace, async (catalog) => {
          const report = await interruptible((signal) =>
            writeRunReport(catalog, workspace, {
              name: o.name,
              comparisons,
              signal,
              ...(selections ? { selections } : {}),
              ...(o.title ? { title: o.title } : {}),
            }),
          );
          for (const m of report.missingImages) warn(`warning: thumbnail ${m}`);
          out(`report: ${report.html}\n`);
        });
      },
    );
}

const list = (text: string | undefined) =>
  text
    ?.split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/**
 * The comparisons a report asks for: every budget of the named compare runs (or only `budgets`); with
 * budgets alone, the one run that has all of them (two such runs are ambiguous: an error naming them).
 */
async function savedComparisons(
  workspace: string,
  runs: string[] | undefined,
  budgets: string[] | undefined,
): Promise<Array<Comparison & { source: string }>> {
  if (!runs?.length && !budgets?.length) return [];
  const saved = await listCompareRuns(workspace);
  const known = saved.size
    ? `saved runs: ${[...saved.keys()].join(', ')}`
    : 'none saved yet: run curate compare';
  const fileOf = (run: string, budget: string) => comparisonFile(workspace, run, budget);
  let chosen = runs ?? [];
  if (!chosen.length) {
    chosen = [...saved.entries()]
      .filter(([run, files]) => budgets!.every((b) => files.includes(fileOf(run, b))))
      .map(([run]) => run);
    if (chosen.length === 0)
      throw new SelectionInputError(`no compare run has budget ${budgets!.join(', ')} (${known})`);
    if (chosen.length > 1)
      throw new SelectionInputError(
        `compare runs ${chosen.join(', ')} all have budget ${budgets!.join(', ')}: pick one with --compare <run>`,
      );
  }
  const out: Array<Comparison & { source: string }> = [];
  for (const run of chosen) {
    const files = saved.get(run);
    if (!files) throw new SelectionInputError(`no compare run '${run}' in ${workspace} (${known})`);
    const wanted = budgets ? budgets.map((b) => fileOf(run, b)) : files;
    for (const file of wanted) {
      if (!files.includes(file))
        throw new SelectionInputError(
          `compare run '${run}' has no comparison ${path.basename(file)} (${file})`,
        );
      out.push({ ...(await readComparisonFile(file)), source: file });
    }
  }
  return out;
}

/** {@link exportSelection} with a bar per phase (reading archives, writing files). */
export async function exportWithProgress(
  catalog: Catalog,
  workspace: string,
  selection: string,
  options: Parameters<typeof exportSelection>[3],
): Promise<ExportReport> {
  let bar: ProgressLine | undefined;
  let phase = '';
  try {
    return await exportSelection(catalog, workspace, selection, {
      ...options,
      onProgress: (done, total, now) => {
        if (now !== phase) {
          bar?.stop();
          phase = now;
          bar = countBar(`export ${now === 'collect' ? 'read' : 'write'}`, 'samples');
          bar.start(total, done);
        } else bar?.update(done);
      },
    });
  } finally {
    bar?.stop();
  }
}

export function formatExport(r: ExportReport): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const lines = [
    r.schedule
      ? `exported ${r.samples} samples of dynamic selection '${r.selection}' (${r.picks} static picks + schedule keys) as ${r.format} in ${r.seconds.toFixed(1)} s → ${r.out}`
      : `exported ${r.samples} of ${r.picks} picks of '${r.selection}' as ${r.format} in ${r.seconds.toFixed(1)} s → ${r.out}`,
    ...(r.schedule ? [`  ${r.schedule.summary}`] : []),
    ...r.files.map(
      (f) => `  ${f.name}  ${mib(f.bytes)}${f.samples !== undefined ? `  ${f.samples} samples` : ''}`,
    ),
  ];
  const b = r.bytes;
  if (b.savingFactor !== null && b.tier2Pool !== null)
    lines.push(
      `  data moved when training on it: ${mib(b.tier2Selected ?? 0)} of the pool's ${mib(b.tier2Pool)} (${b.savingFactor.toFixed(1)}× less)`,
    );
  if (r.review.rejected.length || r.review.accepted.length)
    lines.push(
      `  manual review: ${r.review.rejected.length} rejected picks left out, ${r.review.accepted.length} accepted samples added`,
    );
  // Keys, files and reasons come from the dataset: one field each, escaped.
  for (const s of r.skipped.slice(0, 10))
    lines.push(
      `  skipped ${printable(s.key)}${s.file ? ` (${printable(s.file)})` : ''}: ${printable(s.reason)}`,
    );
  if (r.skipped.length > 10) lines.push(`  … ${r.skipped.length - 10} more skipped (see provenance.json)`);
  for (const w of r.warnings) lines.push(`  warning: ${printable(w)}`);
  return lines.join('\n') + '\n';
}
