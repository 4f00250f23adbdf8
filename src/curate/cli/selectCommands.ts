/**
 * `curate index | select | compare | search | methods`: flags and config merged here, the work done by
 * the pipeline API (src/curate/pipeline.ts, searchIndex.ts), results printed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import {
  compareAtBudgets,
  loadConfig,
  parseParamPairs,
  parsePartitionSlice,
  resolveEncoder,
  saveComparison,
  selectionDir,
  selectPartitioned,
  selectPartitionTask,
  selectSubset,
  WorkspaceIndex,
  writeRunReport,
  type Catalog,
  type CompareBudgetsRequest,
  type Comparison,
  type CurateConfig,
  type Space,
  type StoredSelection,
} from '../api.js';
import { describeMethods, getSelector, registry, selectionMethods } from '../../select/registry.js';
import { parseBudget, SelectionInputError } from '../../select/contract.js';
import { METHODS_INDEX_DOC } from '../../select/methodDocs.js';
import { PACKAGE_ROOT } from '../../embed/env.js';
import {
  interruptible,
  requireEmbeddings,
  requireIndex,
  requireLabelField,
  withCatalog,
  workspaceOf,
} from './context.js';
import { printable, warn } from './escape.js';
import { describeExcluded } from '../embeddings.js';
import { defaultCompareRun } from '../pipeline.js';
import { parseEvaluators } from '../../eval/evaluate.js';
import type { IndexKind } from '../../select/index/types.js';
import { fractionOption, integerOption, LIMITS, seedOption, UsageError } from './options.js';
import { countBar, progressLine } from './progress.js';
import { columnsOf, formatCell, marksOf, noiseLegend, type CompareColumn } from '../compareTable.js';
import type { CompareRow } from '../pipeline.js';
import { classNamesOf, parseClassNamesSpec, type ClassNamesRequest } from '../classNames.js';

interface SharedSelectOptions {
  config?: string;
  labelField?: string;
  views?: string;
  seed?: number;
  classNames?: string;
  encoder?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function shared(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'config file (default: <workspace>/curate.config.json when present)')
    .option('--label-field <name>', 'metadata field with an integer class per sample (e.g. label_index)')
    .option('--views <variant>', 'attach augmented-view embeddings (SAS)')
    .option(
      '--class-names <a,b,…|@file|field:NAME>',
      'class names for zero-shot latent classes (clipcov, sas): a comma list, a file of one name per line, ' +
        'or the distinct values of a metadata field; each name is embedded with a CLIP prompt ensemble',
    )
    .option(
      '--encoder <id|dir|default>',
      'with --class-names: the encoder the workspace was embedded with ' +
        '(default: embed.encoder of the config, else the workspace offline encoder)',
    )
    .addOption(seedOption());
}

/**
 * `--class-names` (or `classNames` in the config), parsed and checked before any work, with the encoder
 * that embeds them (`--encoder`, else `embed.encoder` of the config). `--encoder` alone is an error.
 */
function classNamesChoice(
  o: SharedSelectOptions,
  config: CurateConfig & { file?: string },
): ClassNamesRequest {
  const text = o.classNames ?? config.classNames;
  if (text === undefined) {
    if (o.encoder)
      throw new UsageError('--encoder is only used with --class-names (to embed the class names)');
    return {};
  }
  const source = o.classNames !== undefined ? '--class-names' : `classNames (${config.file ?? 'config'})`;
  const encoder = o.encoder ?? config.embed?.encoder;
  return { classNames: parseClassNamesSpec(text, source), ...(encoder ? { encoder } : {}) };
}

/**
 * What select and compare read must be there before any work: the embeddings (and views), and an
 * integer label in the label field of every embedded sample.
 */
async function checkInputs(
  catalog: Catalog,
  workspace: string,
  o: SharedSelectOptions,
  config: CurateConfig & { file?: string },
  classes: ClassNamesRequest = {},
): Promise<void> {
  const choice = embeddingChoice(o, config);
  await requireEmbeddings(catalog, workspace, choice.views);
  // field:NAME must name a metadata field of class names (the names themselves are embedded later).
  if (classes.classNames)
    await classNamesOf(
      catalog,
      classes.classNames,
      o.classNames !== undefined ? '--class-names' : `classNames (${config.file ?? 'config'})`,
    );
  if (choice.labelField)
    await requireLabelField(
      catalog,
      choice.labelField,
      o.labelField ? '--label-field' : `labelField (${config.file ?? 'config'})`,
    );
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

export function registerSelectCommands(program: Command, out: (text: string) => void): void {
  program
    .command('index')
    .description('build the HNSW index of the workspace embeddings (for search, neighbours and kNN methods)')
    .addOption(
      new Option('--space <space>', 'which vectors').choices(['image', 'text', 'joint']).default('image'),
    )
    .addOption(integerOption('--m <n>', 'HNSW graph degree M', LIMITS.m, 16))
    .addOption(integerOption('--ef-construction <n>', 'HNSW efConstruction', LIMITS.efConstruction, 200))
    .addOption(
      new Option(
        '--kind <library>',
        'hnswlib (float32, sharded over the cores; the default) or usearch (float16, half the memory)',
      ).choices(['hnswlib', 'usearch']),
    )
    .addOption(
      integerOption(
        '--shards <n>',
        'hnswlib shards, one thread each (default: one per core, ≥ 50,000 items each)',
        LIMITS.shards,
      ),
    )
    .action(
      async (
        o: { space: Space; m: number; efConstruction: number; kind?: IndexKind; shards?: number },
        cmd: Command,
      ) => {
        if (o.shards !== undefined && o.kind === 'usearch')
          throw new UsageError('--shards applies to --kind hnswlib (usearch builds one graph on every core)');
        const workspace = workspaceOf(cmd);
        await withCatalog(workspace, async (catalog) => {
          await requireEmbeddings(catalog, workspace);
          const progress = countBar(`index ${o.space}`, 'vectors');
          let started = false;
          const t0 = performance.now();
          // The build itself runs to its end (native code); a Ctrl-C during it still exits 130.
          const index = await interruptible(async () => {
            try {
              return await WorkspaceIndex.build(catalog, workspace, o.space, {
                m: o.m,
                efConstruction: o.efConstruction,
                ...(o.kind ? { kind: o.kind } : {}),
                ...(o.shards !== undefined ? { shards: o.shards } : {}),
                onProgress: (done, total) => {
                  if (!started) progress.start(total, 0);
                  started = true;
                  progress.update(done);
                },
              });
            } finally {
              progress.stop();
            }
          });
          if (index.kindReason) out(`index: usearch, since ${index.kindReason}\n`);
          out(
            `${o.space} index of ${index.ids.length} samples in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
              `(build ${(index.buildSeconds ?? 0).toFixed(1)} s, ${index.describe()}) → ${WorkspaceIndex.dir(workspace)}\n`,
          );
          // What neighbours and search are worth: recall@10 against exact search on sampled items.
          if (index.recall)
            out(
              `recall@${index.recall.k} ${index.recall.recall.toFixed(2)} on ${index.recall.queries} sampled queries ` +
                `(efSearch ${index.recall.efSearch}, against exact search)\n`,
            );
        });
      },
    );

  shared(
    program
      .command('select')
      .description('pick a subset with one method and save it as a named selection')
      .option('--method <name>', `selection method (see curate methods)`)
      .option('--budget <n|p%>', 'subset size: a count (500) or a share of the pool (10%)')
      .option('--name <sel>', 'selection name (default: <method>-<budget>)')
      .option('--from <sel>', "select within an earlier selection's picks (e.g. a filter's result)")
      .option('-p, --param <name=value>', 'method option, repeatable (values parse as JSON)', collect, [])
      .addOption(
        integerOption(
          '--partitions <N>',
          'split the pool into N partitions (catalog part i → partition i mod N), select in each, merge ' +
            '(methods with a partitioned form: see curate methods); reuses the partitions tasks or earlier runs computed',
          LIMITS.partitions,
        ),
      )
      .option(
        '--partition <I/N>',
        'one task of an array job: compute partition I of N only (I from 0), reading the catalog only; ' +
          'then `curate select … --partitions N` merges',
      )
      .option(
        '--one-process',
        'the whole pool in one process even above 1,000,000 pairs (where methods with a partitioned form ' +
          'run partitioned by default)',
      ),
  ).action(
    async (
      o: SharedSelectOptions & {
        method?: string;
        budget?: string;
        name?: string;
        from?: string;
        param: string[];
        partitions?: number;
        partition?: string;
        oneProcess?: boolean;
      },
      cmd,
    ) => {
      const workspace = workspaceOf(cmd);
      const config = await loadConfig(workspace, o.config);
      const method = o.method ?? config.select?.method;
      const budget = o.budget ?? config.select?.budget;
      if (!method)
        throw new SelectionInputError(
          'select needs --method and --budget (or select.method/budget in the config)',
        );
      // Filters (caption-filter, exact-dedup, …) keep everything that passes: no budget needed.
      if (!budget && getSelector(method).kind !== 'filter')
        throw new SelectionInputError(
          'select needs --method and --budget (or select.method/budget in the config)',
        );
      getSelector(method);
      if (budget) parseBudget(budget);
      const params = { ...(config.select?.params ?? {}), ...parseParamPairs(o.param) };
      const name = o.name ?? config.select?.name;
      if (name?.includes('/'))
        throw new UsageError(
          `selection name '${name}': names with '/' are kept for compare runs (<run>/<method>-<budget>)`,
        );
      const classes = classNamesChoice(o, config);
      const slice = o.partition === undefined ? undefined : parsePartitionSlice(o.partition);
      if (slice && o.partitions !== undefined && o.partitions !== slice.count)
        throw new UsageError(`--partition ${o.partition} and --partitions ${o.partitions} disagree on N`);
      const partitions = slice?.count ?? o.partitions;
      if (partitions !== undefined && o.oneProcess)
        throw new UsageError('--one-process and --partition(s) ask for different things: give one');
      if (partitions !== undefined) {
        const request = {
          method,
          ...(budget ? { budget } : {}),
          partitions,
          params,
          ...(name ? { name } : {}),
          ...(o.from ? { from: o.from } : {}),
          ...embeddingChoice(o, config),
          ...classes,
        };
        await withCatalog(
          workspace,
          (catalog) =>
            interruptible(async (signal) => {
              const steps = stepsBar(
                slice ? `select ${method} partition ${slice.index}/${partitions}` : `select ${method}`,
              );
              try {
                if (slice) {
                  const r = await selectPartitionTask(
                    catalog,
                    workspace,
                    { ...request, signal },
                    slice.index,
                  );
                  steps.stop();
                  out(
                    `task ${r.index}/${r.count}: ${r.candidates} candidates from ${r.items} items in ${r.parts} parts` +
                      `${r.reused ? ' (already done by an earlier run of this task)' : ''} → ${r.file}\n` +
                      `run \`curate select … --partitions ${r.count}\` without --partition once every task has finished, to merge\n`,
                  );
                  return;
                }
                const stored = await selectPartitioned(catalog, workspace, {
                  ...request,
                  signal,
                  progress: steps.update,
                });
                steps.stop();
                out(savedLines(workspace, stored));
                out(traceLines(stored));
              } catch (err) {
                steps.stop(false);
                throw err;
              }
            }),
          slice ? { readOnly: true } : {},
        );
        return;
      }
      await withCatalog(workspace, async (catalog) => {
        await checkInputs(catalog, workspace, o, config, classes);
        await interruptible(async (signal) => {
          const steps = stepsBar(`select ${method}`);
          const stored = await selectSubset(catalog, workspace, {
            progress: steps.update,
            method,
            ...(budget ? { budget } : {}),
            ...(o.from ? { from: o.from } : {}),
            ...(o.oneProcess ? { oneProcess: true } : {}),
            params,
            signal,
            ...(name ? { name } : {}),
            ...embeddingChoice(o, config),
            ...classes,
          }).then(
            (done) => (steps.stop(), done),
            (err: unknown) => {
              steps.stop(false);
              throw err;
            },
          );
          out(savedLines(workspace, stored));
          const from = stored.provenance.from;
          if (from)
            out(
              `  from: the ${from.pool} picks of ${printable(from.selection)} (${from.method})` +
                (from.missing ? `; ${from.missing} of its picks are no longer in the pool` : '') +
                '\n',
            );
          out(traceLines(stored));
          const excluded = stored.provenance.excluded ?? [];
          if (excluded.length) warn(describeExcluded(excluded.map((x, i) => ({ id: BigInt(i), ...x }))));
        });
      });
    },
  );

  shared(
    program
      .command('compare')
      .description('run several methods at one or more budgets, score them side by side, write a report')
      .option('--methods <a,b,c|all>', 'methods to compare (all: every method but the filters)', 'all')
      .option('--budget <n|p%,…>', 'subset size for every method; several (5%,10%,20%) draw curves')
      .addOption(
        fractionOption(
          '--held-out <share>',
          'share of the pool held out for evaluation, seen by no method (default 0.2; stratified with labels)',
        ),
      )
      .option(
        '--eval <clip,ssl,probe|default|none>',
        'evaluators: clip = proxy CLIP (held-out retrieval, zero-shot with --class-names), ssl = proxy SSL ' +
          '(needs --views), probe = label probe (needs --label-field); default = what the data allows',
      )
      .addOption(
        integerOption(
          '--pool-sample <n>',
          'compare on a seeded sample of this many embedded samples (needed above 1,000,000: every method holds its pool in memory)',
          LIMITS.poolSample,
        ),
      )
      .addOption(
        integerOption(
          '--eval-seeds <n>',
          'seeds per metric (training seed + held-out resample)',
          LIMITS.evalSeeds,
        ),
      )
      .addOption(
        integerOption(
          '--proxy-steps <n>',
          'proxy training steps, the same for every subset (default: 5 × pool / batch, from 50 to 500)',
          LIMITS.proxySteps,
        ),
      )
      .addOption(
        integerOption('--proxy-batch <n>', 'proxy training batch size (default 256)', LIMITS.proxyBatch),
      )
      .option(
        '--name <run>',
        'name of this compare run: its selections are <run>/<method>-<budget> (default: compare-<budgets>)',
      )
      .option('--overwrite', 'replace an earlier compare run of the same name (without it: an error)')
      .option('--json <file>', 'also write the comparison (an array with several budgets) as JSON')
      .option('--no-report', 'skip the HTML report'),
  ).action(
    async (
      o: SharedSelectOptions & {
        methods: string;
        budget?: string;
        heldOut?: number;
        poolSample?: number;
        eval?: string;
        evalSeeds?: number;
        proxySteps?: number;
        proxyBatch?: number;
        name?: string;
        overwrite?: boolean;
        json?: string;
        report: boolean;
      },
      cmd,
    ) => {
      const workspace = workspaceOf(cmd);
      const config = await loadConfig(workspace, o.config);
      const budget = o.budget ?? config.compare?.budget;
      if (!budget) throw new SelectionInputError('compare needs --budget (or compare.budget in the config)');
      const methods =
        o.methods === 'all'
          ? (config.compare?.methods ?? selectionMethods())
          : o.methods
              .split(',')
              .map((m) => m.trim())
              .filter(Boolean);
      checkMethods(methods, o.methods === 'all' ? `compare.methods (${config.file})` : '--methods');
      const budgets = budget.split(',').map((b) => b.trim());
      budgets.forEach((b) => parseBudget(b));
      const heldOut = o.heldOut ?? config.compare?.heldOut;
      const run = o.name ?? defaultCompareRun(budgets);
      const classes = classNamesChoice(o, config);
      const choice = embeddingChoice(o, config);
      const evalText = o.eval ?? config.compare?.eval ?? 'default';
      const evaluators =
        evalText.trim() === 'none'
          ? []
          : parseEvaluators(evalText, { labels: Boolean(choice.labelField), views: Boolean(choice.views) });
      const evalSeeds = o.evalSeeds ?? config.compare?.evalSeeds;
      const steps = o.proxySteps ?? config.compare?.proxySteps;
      const proxy = {
        ...(steps ? { steps } : {}),
        ...(o.proxyBatch ? { batch: o.proxyBatch } : {}),
      };
      await withCatalog(workspace, async (catalog) => {
        await checkInputs(catalog, workspace, o, config, classes);
        await interruptible(async (signal) => {
          const comparisons = await compareWithProgress(catalog, workspace, out, {
            methods,
            budgets,
            run,
            overwrite: o.overwrite ?? false,
            signal,
            evaluators,
            ...(evalSeeds ? { evalSeeds } : {}),
            ...(Object.keys(proxy).length ? { proxy: { clip: proxy, ssl: proxy } } : {}),
            ...(heldOut ? { heldOut } : {}),
            ...(o.poolSample ? { poolSample: o.poolSample } : {}),
            ...(config.compare?.params ? { params: config.compare.params } : {}),
            ...choice,
            ...classes,
          });
          if (o.json) {
            await mkdir(path.dirname(path.resolve(o.json)), { recursive: true });
            await writeFile(
              o.json,
              JSON.stringify(comparisons.length === 1 ? comparisons[0] : comparisons, null, 1),
            );
            out(`comparison written to ${o.json}\n`);
          }
          if (o.report) {
            const report = await writeRunReport(catalog, workspace, { name: run, comparisons, signal });
            out(`report: ${report.html}\n`);
          }
        });
      });
    },
  );

  program
    .command('search')
    .description('find images by free text in the image index')
    .argument('<text>', 'query')
    .addOption(integerOption('-k <n>', 'results', LIMITS.k, 20))
    .option('--encoder <id|dir|default>', 'the encoder the workspace was embedded with', 'default')
    .action(async (text: string, o: { k: number; encoder: string }, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      await withCatalog(workspace, async (catalog) => {
        await requireEmbeddings(catalog, workspace);
        requireIndex(workspace, 'image');
        const index = await WorkspaceIndex.load(workspace, 'image');
        const encoder = await resolveEncoder(catalog, workspace, o.encoder, {});
        try {
          const hits = await index.searchText(catalog, encoder, text, o.k);
          hits.forEach((h, r) =>
            out(
              `${String(r + 1).padStart(3)}  ${h.similarity.toFixed(3)}  ${printable(h.key)}  ${printable(h.caption)}\n`,
            ),
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
      // Docs paths become absolute: the docs/ folder ships inside the installed package.
      const methods = describeMethods().map((m) => ({
        ...m,
        docs: m.docs && path.join(PACKAGE_ROOT, m.docs),
      }));
      if (o.json) {
        out(JSON.stringify(methods, null, 1) + '\n');
        return;
      }
      out(
        `Each method's page (what it selects, equations, parameters, cost): ${path.join(PACKAGE_ROOT, METHODS_INDEX_DOC)}\n\n`,
      );
      for (const m of methods) {
        out(`${m.name} — ${m.description}${m.needs.length ? ` (needs ${m.needs.join(', ')})` : ''}\n`);
        out(`  docs: ${m.docs ?? '(none yet)'}\n`);
        out(`  scale: ${m.scale}\n`);
        const props = (
          m.params as { properties?: Record<string, { default?: unknown; description?: string }> }
        ).properties;
        for (const [name, p] of Object.entries(props ?? {}))
          out(`    ${name} = ${JSON.stringify(p.default)}${p.description ? `  ${p.description}` : ''}\n`);
      }
    });
}

/** A method's own progress (steps of its main loop), when it reports any; started by the first report. */
function stepsBar(label: string): {
  update: (done: number, total: number) => void;
  stop: (ok?: boolean) => void;
} {
  let bar: ReturnType<typeof countBar> | undefined;
  return {
    update(done, total) {
      if (!bar) {
        bar = countBar(label, 'steps');
        bar.start(total, done);
      } else bar.update(done);
    },
    stop(ok = true) {
      bar?.stop(ok);
      bar = undefined;
    },
  };
}

/** Every name in a method list must be in the registry: named, with the valid ones, before any work. */
function checkMethods(methods: string[], source: string): void {
  if (methods.length === 0) throw new UsageError(`${source}: no methods given`);
  const unknown = methods.filter((m) => !registry.has(m));
  if (unknown.length)
    throw new UsageError(
      `${source}: unknown method${unknown.length > 1 ? 's' : ''} ${unknown.map((m) => `'${m}'`).join(', ')}; ` +
        `available: ${[...registry.keys()].join(', ')}`,
    );
}

/**
 * {@link compareAtBudgets} with a bar over methods × budgets; prints each budget's table and saves it
 * as `<workspace>/compare/compare-<budget>.json`.
 */
export async function compareWithProgress(
  catalog: Catalog,
  workspace: string,
  out: (text: string) => void,
  request: CompareBudgetsRequest,
): Promise<Comparison[]> {
  const progress = progressLine({
    label: 'compare',
    unit: 'method runs',
    format: ' compare [{bar}] {value}/{total} method runs | {budget} {method}',
    details: (x) => (x.method ? `now ${x.method} at ${x.budget}` : ''),
  });
  progress.start(request.methods.length * request.budgets.length, 0, { budget: '', method: '' });
  let comparisons: Comparison[];
  try {
    comparisons = await compareAtBudgets(catalog, workspace, {
      ...request,
      onMethod: (method, budget, done) => progress.update(done, { method, budget }),
    });
  } finally {
    progress.stop();
  }
  const first = comparisons[0];
  if (first?.poolInfo)
    out(
      `compare run '${first.run}': every method picked from ${first.poolInfo.description}; ` +
        `selections saved as ${first.run}/<method>-<budget>\n\n`,
    );
  for (const c of comparisons) {
    out(formatComparison(c));
    out(`comparison saved to ${await saveComparison(workspace, c)}\n\n`);
  }
  return comparisons;
}

/** The compare table, in Markdown so it can be pasted into notes as is (columns: compareTable.ts). */
export function formatComparison(c: Comparison): string {
  const columns = columnsOf(c);
  const marks = marksOf(c, columns);
  const cell = (col: CompareColumn, r: CompareRow) => {
    const text = formatCell(col, col.value(r));
    const mark = marks.get(r)?.get(col.key);
    return mark === 'best' ? `**${text}**` : mark === 'within-noise' ? `≈${text}` : text;
  };
  const header = columns.map((col) =>
    col.group === 'subset' ? col.label : `${col.group.split(' (')[0]} ${col.label}`,
  );
  const ref = {
    ...c.reference,
    method: '(whole pool)',
    selection: '',
    budget: c.pool,
    kept: c.pool,
    seconds: NaN,
  };
  const lines = [
    `Budget ${budget(c)} of a pool of ${c.pool} (${c.heldOut} held out for evaluation)`,
    ...(c.evaluation ? [`Evaluation: ${c.evaluation.description}`] : []),
    '',
    `| method | ${header.join(' | ')} |`,
    `|---|${columns.map(() => '---:').join('|')}|`,
    `| (whole pool) | ${columns.map((col) => (col.key === 'seconds' ? '' : formatCell(col, col.value(ref)))).join(' | ')} |`,
    ...c.rows.map((r) =>
      r.error
        ? `| ${r.method} | failed: ${printable(r.error).replaceAll('|', '/')} |${columns
            .slice(1)
            .map(() => ' |')
            .join('')}`
        : `| ${r.method}${r.scheduled ? ' (schedule)' : ''} | ${columns.map((col) => cell(col, r)).join(' | ')} |`,
    ),
    '',
    noiseLegend(c),
  ];
  return lines.join('\n') + '\n';
}

const budget = (c: Comparison) => c.budget;

const SYNTHETIC_LABELS: Record<NonNullable<StoredSelection['synthetic']>['classes'], string> = {
  labels: 'label field values',
  'zero-shot': 'indices into the class names',
  kmeans: 'k-means cluster ids of this run',
};

/** What `select` saved: picks, pool, time and folder, and a distillation's learned vectors. */
function savedLines(workspace: string, stored: StoredSelection): string {
  const dir = selectionDir(workspace, stored.name);
  const v = stored.synthetic;
  return (
    `${stored.name}: ${stored.method} kept ${stored.sampleIds.length} of ${stored.pool} in ${stored.provenance.seconds.toFixed(1)} s → ${dir}\n` +
    (v && stored.files.synthetic
      ? `  synthetic: ${v.rows} learned vectors (d = ${v.dim}; labels: ${SYNTHETIC_LABELS[v.classes]}) → ` +
        `${[stored.files.synthetic, v.labels, v.stages].join(', ')}\n`
      : '')
  );
}

/** Partitions whose own trace lines `select` prints; the rest are counted (selection.json keeps them all). */
const PARTITION_LINES_SHOWN = 3;

/**
 * The trace, a line each. A partitioned run of a quota form repeats every partition's own lines (4 a
 * partition for SeTa: 400 at 100 partitions): the first few partitions' are printed, the others
 * folded into one line saying where they are.
 */
function traceLines(stored: StoredSelection): string {
  const lines: string[] = [];
  const folded = new Set<number>();
  let foldedLines = 0;
  let foldAt = -1;
  for (const t of stored.trace) {
    const partition = /^partition (\d+): /.exec(t.stage);
    if (partition && Number(partition[1]) >= PARTITION_LINES_SHOWN) {
      folded.add(Number(partition[1]));
      foldedLines += 1;
      if (foldAt < 0) foldAt = lines.push('') - 1;
      continue;
    }
    lines.push(`  ${t.stage}: ${printable(t.message)}\n`);
  }
  if (foldAt >= 0)
    lines[foldAt] =
      `  … ${foldedLines} more lines of ${folded.size} more partition${folded.size === 1 ? '' : 's'}, in the trace of ` +
      `${path.join('selections', stored.name, 'selection.json')}\n`;
  return lines.join('');
}
