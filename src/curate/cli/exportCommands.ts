/**
 * `curate export | report`: write a saved selection out as shards / manifests / keys, and the HTML run
 * report from saved comparisons and selections. The work is done by the API (export/, runReport.ts).
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import {
  comparisonFile,
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
import { interruptible, withCatalog, workspaceOf } from './context.js';
import { printable, warn } from './escape.js';
import { integerOption, LIMITS } from './options.js';

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
    .description('write the HTML report from saved comparisons (curate compare) and selections')
    .option('--budget <n|p%,…>', 'comparisons to include, by budget (saved by curate compare)')
    .option('--selections <a,b,…>', 'selections to show (default: those of the first comparison)')
    .option('--name <name>', 'report folder under <workspace>/reports/', 'report')
    .option('--title <text>', 'page title')
    .action(
      async (o: { budget?: string; selections?: string; name: string; title?: string }, cmd: Command) => {
        const workspace = workspaceOf(cmd);
        const comparisons: Comparison[] = [];
        for (const budget of o.budget?.split(',').map((b) => b.trim()) ?? []) {
          const file = comparisonFile(workspace, budget);
          const text = await readFile(file, 'utf8').catch(() => {
            throw new SelectionInputError(
              `no comparison at ${budget}: ${file} is missing (run curate compare)`,
            );
          });
          let saved: Omit<Comparison, 'budget'>;
          try {
            saved = JSON.parse(text) as Omit<Comparison, 'budget'>;
          } catch (err) {
            throw new SelectionInputError(
              `comparison ${file} is damaged (${(err as Error).message}): run curate compare --budget ${budget} again`,
            );
          }
          comparisons.push({ budget, ...saved });
        }
        const selections = o.selections?.split(',').map((s) => s.trim());
        if (!comparisons.length && !selections?.length)
          throw new SelectionInputError('report needs --budget (saved comparisons) or --selections');
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

/** {@link exportSelection} with a bar per phase (reading archives, writing files). */
export async function exportWithProgress(
  catalog: Catalog,
  workspace: string,
  selection: string,
  options: Parameters<typeof exportSelection>[3],
): Promise<ExportReport> {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: ' export {phase} [{bar}] {value}/{total} samples | ETA {eta_formatted}',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let phase = '';
  try {
    return await exportSelection(catalog, workspace, selection, {
      ...options,
      onProgress: (done, total, now) => {
        if (now !== phase) {
          if (phase) bar.stop();
          phase = now;
          bar.start(total, done, { phase: now === 'collect' ? 'read' : 'write' });
        } else bar.update(done);
      },
    });
  } finally {
    if (phase) bar.stop();
  }
}

export function formatExport(r: ExportReport): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const lines = [
    `exported ${r.samples} of ${r.picks} picks of '${r.selection}' as ${r.format} in ${r.seconds.toFixed(1)} s → ${r.out}`,
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
