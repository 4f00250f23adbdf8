/**
 * `curate index | select | compare | search | methods`: flags and config merged here, the work done by
 * the pipeline API (src/curate/pipeline.ts, searchIndex.ts), results printed.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { resolveEncoder } from '../api.js';
import { loadConfig, parseParamPairs, type CurateConfig } from '../config.js';
import { compareMethods, selectSubset, type Comparison } from '../pipeline.js';
import { WorkspaceIndex, type Space } from '../searchIndex.js';
import { selectionDir } from '../selections.js';
import { describeMethods, registry } from '../../select/registry.js';
import { SelectionInputError } from '../../select/contract.js';
import { interruptible, withCatalog, workspaceOf } from './context.js';

interface SharedSelectOptions {
  config?: string;
  labelField?: string;
  views?: string;
  seed?: number;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const integer = (v: string) => Number.parseInt(v, 10);

function shared(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'config file (default: <workspace>/curate.config.json when present)')
    .option('--label-field <name>', 'metadata field with an integer class per sample (e.g. label_index)')
    .option('--views <variant>', 'attach augmented-view embeddings (SAS)')
    .option('--seed <n>', 'random seed', integer);
}

/** Flags over config over defaults. */
function embeddingChoice(o: SharedSelectOptions, config: CurateConfig) {
  const labelField = o.labelField ?? config.labelField;
  const views = o.views ?? config.views;
  return {
    ...(labelField ? { labelField } : {}),
    ...(views ? { views } : {}),
    seed: o.seed ?? config.seed ?? 0,
  };
}

function bar(label: string) {
  return new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: ` ${label} [{bar}] {percentage}% | {value}/{total} {unit} | ETA {eta_formatted}`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
}

export function registerSelectCommands(program: Command, out: (text: string) => void): void {
  program
    .command('index')
    .description('build the HNSW index of the workspace embeddings (for search, neighbours and kNN methods)')
    .addOption(
      new Option('--space <space>', 'which vectors').choices(['image', 'text', 'joint']).default('image'),
    )
    .option('--m <n>', 'HNSW graph degree M', integer, 16)
    .option('--ef-construction <n>', 'HNSW efConstruction', integer, 200)
    .action(async (o: { space: Space; m: number; efConstruction: number }, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      await withCatalog(workspace, async (catalog) => {
        const progress = bar('index');
        let started = false;
        const t0 = performance.now();
        const index = await WorkspaceIndex.build(catalog, workspace, o.space, {
          m: o.m,
          efConstruction: o.efConstruction,
          onProgress: (done, total) => {
            if (!started) progress.start(total, 0, { unit: 'vectors' });
            started = true;
            progress.update(done);
          },
        });
        progress.stop();
        out(
          `${o.space} index of ${index.ids.length} samples in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${WorkspaceIndex.dir(workspace)}\n`,
        );
      });
    });

  shared(
    program
      .command('select')
      .description('pick a subset with one method and save it as a named selection')
      .option('--method <name>', `selection method (see curate methods)`)
      .option('--budget <n|p%>', 'subset size: a count (500) or a share of the pool (10%)')
      .option('--name <sel>', 'selection name (default: <method>-<budget>)')
      .option('-p, --param <name=value>', 'method option, repeatable (values parse as JSON)', collect, []),
  ).action(
    async (
      o: SharedSelectOptions & { method?: string; budget?: string; name?: string; param: string[] },
      cmd,
    ) => {
      const workspace = workspaceOf(cmd);
      const config = await loadConfig(workspace, o.config);
      const method = o.method ?? config.select?.method;
      const budget = o.budget ?? config.select?.budget;
      if (!method || !budget)
        throw new SelectionInputError(
          'select needs --method and --budget (or select.method/budget in the config)',
        );
      const params = { ...(config.select?.params ?? {}), ...parseParamPairs(o.param) };
      const name = o.name ?? config.select?.name;
      await withCatalog(workspace, (catalog) =>
        interruptible(async (signal) => {
          const stored = await selectSubset(catalog, workspace, {
            method,
            budget,
            params,
            signal,
            ...(name ? { name } : {}),
            ...embeddingChoice(o, config),
          });
          out(
            `${stored.name}: ${stored.method} kept ${stored.sampleIds.length} of ${stored.pool} in ${stored.provenance.seconds.toFixed(1)} s → ${selectionDir(workspace, stored.name)}\n`,
          );
          for (const t of stored.trace) out(`  ${t.stage}: ${t.message}\n`);
        }),
      );
    },
  );

  shared(
    program
      .command('compare')
      .description('run several methods at one budget and score them side by side')
      .option('--methods <a,b,c|all>', 'methods to compare', 'all')
      .option('--budget <n|p%>', 'subset size for every method')
      .option('--held-out <share>', 'share of the pool held out for the linear probe (with labels)', Number)
      .option('--json <file>', 'also write the comparison as JSON'),
  ).action(
    async (
      o: SharedSelectOptions & { methods: string; budget?: string; heldOut?: number; json?: string },
      cmd,
    ) => {
      const workspace = workspaceOf(cmd);
      const config = await loadConfig(workspace, o.config);
      const budget = o.budget ?? config.compare?.budget;
      if (!budget) throw new SelectionInputError('compare needs --budget (or compare.budget in the config)');
      const methods =
        o.methods === 'all'
          ? (config.compare?.methods ?? [...registry.keys()])
          : o.methods.split(',').map((m) => m.trim());
      await withCatalog(workspace, (catalog) =>
        interruptible(async (signal) => {
          const progress = bar('compare');
          progress.start(methods.length, 0, { unit: 'methods' });
          const heldOut = o.heldOut ?? config.compare?.heldOut;
          const comparison = await compareMethods(catalog, workspace, {
            methods,
            budget,
            signal,
            onMethod: (_m, done) => progress.update(done),
            ...(heldOut ? { heldOut } : {}),
            ...(config.compare?.params ? { params: config.compare.params } : {}),
            ...embeddingChoice(o, config),
          });
          progress.stop();
          out(formatComparison(comparison, budget));
          const file =
            o.json ??
            path.join(path.resolve(workspace), 'compare', `compare-${budget.replace('%', 'pct')}.json`);
          await mkdir(path.dirname(file), { recursive: true });
          await writeFile(file, JSON.stringify({ budget, ...comparison }, null, 1));
          out(`comparison saved to ${file}\n`);
        }),
      );
    },
  );

  program
    .command('search')
    .description('find images by free text in the image index')
    .argument('<text>', 'query')
    .option('-k <n>', 'results', integer, 20)
    .option('--encoder <id|dir|default>', 'the encoder the workspace was embedded with', 'default')
    .action(async (text: string, o: { k: number; encoder: string }, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      await withCatalog(workspace, async (catalog) => {
        const index = await WorkspaceIndex.load(workspace, 'image');
        const encoder = await resolveEncoder(catalog, workspace, o.encoder, {
          onFallback: (reason) => process.stderr.write(`curate: warning: ${reason}\n`),
        });
        try {
          const hits = await index.searchText(catalog, encoder, text, o.k);
          hits.forEach((h, r) =>
            out(`${String(r + 1).padStart(3)}  ${h.similarity.toFixed(3)}  ${h.key}  ${h.caption}\n`),
          );
        } finally {
          await encoder.dispose();
        }
      });
    });

  program
    .command('methods')
    .description('list the selection methods with their parameters and defaults')
    .option('--json', 'the full JSON schemas')
    .action((o: { json?: boolean }) => {
      const methods = describeMethods();
      if (o.json) {
        out(JSON.stringify(methods, null, 1) + '\n');
        return;
      }
      for (const m of methods) {
        out(`${m.name} — ${m.description}${m.needs.length ? ` (needs ${m.needs.join(', ')})` : ''}\n`);
        const props = (
          m.params as { properties?: Record<string, { default?: unknown; description?: string }> }
        ).properties;
        for (const [name, p] of Object.entries(props ?? {}))
          out(`    ${name} = ${JSON.stringify(p.default)}${p.description ? `  ${p.description}` : ''}\n`);
      }
    });
}

const pct = (v: number | null) => (v === null || Number.isNaN(v) ? '–' : `${(100 * v).toFixed(1)}%`);
const num = (v: number | null, digits = 3) => (v === null || Number.isNaN(v) ? '–' : v.toFixed(digits));

/** The compare table, in Markdown so it can be pasted into notes as is. */
export function formatComparison(c: Comparison, budget: string): string {
  const head = '| method | kept | probe acc. | CLIP score | class KL | bad captions | duplicates | seconds |';
  const rule = '|---|---:|---:|---:|---:|---:|---:|---:|';
  const ref = c.reference;
  const lines = [
    `Budget ${budget} of a pool of ${c.pool} (${c.heldOut} held out for the probe)`,
    '',
    head,
    rule,
    `| (whole pool) | ${c.pool} | ${pct(ref.probeAccuracy)} | ${num(ref.meanClipScore)} | ${num(ref.classKL)} | ${pct(ref.badCaptions)} | ${pct(ref.duplicates)} | |`,
    ...c.rows.map((r) =>
      r.error
        ? `| ${r.method} | failed: ${r.error.replaceAll('|', '/')} | | | | | | |`
        : `| ${r.method} | ${r.kept} | ${pct(r.probeAccuracy)} | ${num(r.meanClipScore)} | ${num(r.classKL)} | ${pct(r.badCaptions)} | ${pct(r.duplicates)} | ${r.seconds.toFixed(1)} |`,
    ),
  ];
  return lines.join('\n') + '\n';
}
