/**
 * `curate` command line: commander wiring only. Every action calls `src/curate/api.ts`; errors become
 * exit codes here and nowhere else (0 ok, 1 internal failure, 2 usage or bad input, 130 Ctrl-C, 143
 * SIGTERM). Everything printed passes through `printable` (escape.ts): dataset text cannot drive the
 * terminal.
 */
import { Command, CommanderError, Option } from 'commander';
import {
  addDataset,
  DatasetError,
  DEVICES,
  embedCatalog,
  EncoderMismatchError,
  isOfflineSpec,
  offlineEncoderDir,
  parseEmbedSlice,
  type EmbedSlice,
  OFFLINE_ENCODER_NAME,
  resolveEncoder,
  type ResolveEncoderOptions,
  type Device,
  type EmbedReport,
  DEFAULT_WORKSPACE,
  DEMO_DATASET,
  ExportInputError,
  ReviewInputError,
  ISSUE_KINDS,
  type AddDatasetOptions,
  type Catalog,
  DeviceUnavailableError,
  EncoderLoadError,
  WorkspaceStateError,
  WriteError,
  PACKAGE_ROOT,
} from '../api.js';
import { registerResetCommand } from './resetCommand.js';
import { registerClusterCommands } from './clusterCommands.js';
import { ClusterInputError } from '../cluster/plan.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SelectionInputError } from '../../select/contract.js';
import { ConfigError } from '../config.js';
import {
  Interrupted,
  interruptible,
  requireEmbeddings,
  trapSignals,
  withCatalog,
  workspaceOf,
} from './context.js';
import { AugmentedViewsEncoder, viewsVariant } from '../../embed/encoders/augmentedViews.js';
import { printable, warn } from './escape.js';
import { integerOption, LIMITS, UsageError } from './options.js';
import { embedBar, ingestBar } from './progress.js';
import {
  DEMO_BUDGETS,
  DEMO_CLIP_MODEL,
  DEMO_OFFLINE_FIT,
  DEMO_OFFLINE_FIT_NOTE,
  DemoClock,
  runDemoPipeline,
} from './demo.js';
import { registerExportCommands } from './exportCommands.js';
import { registerReviewCommands } from './reviewCommands.js';
import { registerSelectCommands } from './selectCommands.js';
import { formatIngestReport, formatSummary } from './report.js';
import { registerSelectionsCommand } from './selectionsCommand.js';
import { registerTagCommand } from './tagCommand.js';
import { registerDiffCommand } from './diffCommand.js';
import { formatStatus } from './status.js';
import { formatDuration } from './progress.js';

/** name and version of the installed package (package.json at the package root). */
const PACKAGE = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};

export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

const DEMO_WORKSPACE = '.curate-demo';

interface InitOptions {
  imageColumn?: string;
  captionColumn?: string;
  keyColumn?: string;
}

export function buildProgram(out: (text: string) => void): Command {
  const program = new Command('curate')
    .description('Curate image-caption data for CLIP and self-supervised pre-training')
    .option(
      '-w, --workspace <dir>',
      `workspace folder (default: ${DEFAULT_WORKSPACE}; for demo: ${DEMO_WORKSPACE})`,
    )
    .version(`${PACKAGE.name} ${PACKAGE.version}`, '-V, --version', 'print the name and version')
    .exitOverride()
    .configureOutput({
      writeOut: out,
      writeErr: (s) => process.stderr.write(printable(s, { multiline: true })),
      // "error: unknown option '--x'" → "curate: unknown option '--x'", like every other message.
      outputError: (s, write) => write(`curate: ${s.replace(/^error: /, '')}`),
    });

  program
    .command('init')
    .description('read datasets into the workspace catalog (re-running reads only new or changed parts)')
    .argument(
      '<dataset...>',
      'tar shards (globs, {000..010} ranges), an image folder, or a csv/tsv/jsonl/parquet manifest',
    )
    .option('--image-column <name>', 'manifest column with the image path, URL or bytes')
    .option('--caption-column <name>', 'manifest column with the caption')
    .option('--key-column <name>', 'manifest column with a unique sample key')
    .action(async (specs: string[], opts: InitOptions, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      const columns = {
        ...(opts.imageColumn ? { image: opts.imageColumn } : {}),
        ...(opts.captionColumn ? { caption: opts.captionColumn } : {}),
        ...(opts.keyColumn ? { key: opts.keyColumn } : {}),
      };
      await withCatalog(
        workspace,
        async (catalog) => {
          // One unusable dataset must not stop the others: report it, go on, and exit 2 at the end.
          const failed: string[] = [];
          for (const spec of specs) {
            try {
              await ingestWithBar(catalog, spec, { columns }, out);
            } catch (err) {
              if (!(err instanceof DatasetError)) throw err;
              warn(err.message);
              failed.push(spec);
            }
          }
          out(`\nworkspace ${workspace}: ${formatSummary(await catalog.summary())}\n`);
          if (failed.length)
            throw new DatasetError(`${failed.length} of ${specs.length} dataset(s) gave no usable samples`);
        },
        { create: true },
      );
    });

  program
    .command('embed')
    .description('embed every catalogued image and caption (resumable: finished shards are kept)')
    .option(
      '--encoder <id|dir|default>',
      'CLIP model folder or hub id (an error if it cannot be loaded); "default" = offline DNN-free baseline',
      'default',
    )
    .addOption(
      new Option('--device <device>', 'where the model runs (auto: CUDA when its libraries load, else CPU)')
        .choices([...DEVICES])
        .default('auto'),
    )
    .addOption(
      new Option('--dtype <dtype>', 'CLIP weights to load').choices(['fp32', 'fp16', 'q8']).default('fp32'),
    )
    .addOption(
      new Option('--store-dtype <dtype>', 'dtype of the .npy files')
        .choices(['float32', 'float16'])
        .default('float32'),
    )
    .addOption(integerOption('--batch-size <n>', 'images per inference batch', LIMITS.batchSize, 32))
    .addOption(
      integerOption('--threads <n>', 'onnxruntime threads per operator (default: all cores)', LIMITS.threads),
    )
    .option('--refit', 'fit the offline encoder again (new fingerprint: needs a fresh embeddings folder)')
    .addOption(
      integerOption(
        '--views <count>',
        'also embed the mean of COUNT SimCLR-augmented views per image (for SAS and proxy SSL), stored as ' +
          'the variant views-a<COUNT>-s<SEED> that select/compare read with --views',
        LIMITS.views,
      ),
    )
    .addOption(integerOption('--view-seed <n>', 'seed of the augmentations (default 0)', LIMITS.viewSeed, 0))
    .option(
      '--shard <I/N>',
      'be task I of an N-task array job (I counted from 0): embed only every N-th part from the I-th, ' +
        'reading the catalog only; then `curate embed` without --shard registers what the tasks wrote ' +
        'and embeds whatever is missing (docs/cluster.md)',
    )
    .action(async (opts: EmbedCliOptions & { shard?: string }, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      let slice: EmbedSlice | undefined;
      try {
        slice = opts.shard === undefined ? undefined : parseEmbedSlice(opts.shard);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      if (
        slice &&
        isOfflineSpec(opts.encoder) &&
        !existsSync(path.join(offlineEncoderDir(workspace), 'meta.json'))
      )
        throw new UsageError(
          '--shard with the offline encoder needs its fit first (N tasks must not each fit their own): ' +
            'run `curate embed` without --shard once, or pass a CLIP model with --encoder',
        );
      // Tasks only read the catalog, so N of them can run at once on the same workspace.
      await withCatalog(
        workspace,
        async (catalog) => {
          out(
            formatEmbedReport(
              await embedWithBar(catalog, workspace, { ...opts, ...(slice ? { slice } : {}) }),
            ) + '\n',
          );
        },
        slice ? { readOnly: true } : {},
      );
    });

  program
    .command('status')
    .description(
      'summarise the workspace: datasets, samples, issues, embeddings, encoder, index, selections, comparisons, reports',
    )
    .action(async (_opts: object, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      // Read-only: works on a full or read-only disk, and never creates a workspace that is not there.
      await withCatalog(workspace, async (catalog) => out((await formatStatus(catalog, workspace)) + '\n'), {
        readOnly: true,
      });
    });

  program
    .command('issues')
    .description('list per-sample issues: file, key, where, reason')
    .addOption(new Option('--kind <kind>', 'only this kind').choices(Object.keys(ISSUE_KINDS)))
    .addOption(integerOption('--limit <n>', 'at most this many rows', LIMITS.limit, 50))
    .action(async (opts: { kind?: string; limit: number }, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      await withCatalog(workspace, async (catalog) => {
        const rows = await catalog.rows<Record<string, string | null>>(
          `SELECT kind, severity, file, key, "where", reason FROM issues
           WHERE $kind IS NULL OR kind = $kind ORDER BY dataset_id, part, file LIMIT $limit`,
          { kind: opts.kind ?? null, limit: opts.limit },
        );
        // File, key, place and reason all come from the dataset: one field each, escaped.
        const p = (v: string | null | undefined) => printable(v ?? '');
        for (const r of rows) {
          out(
            `${r.kind} [${r.severity === 'error' ? 'skipped' : 'kept'}] ${p(r.file)}${r.key ? ` key=${p(r.key)}` : ''}${r.where ? ` (${p(r.where)})` : ''}: ${p(r.reason)}\n`,
          );
        }
        if (rows.length === 0) out('no issues\n');
      });
    });

  registerSelectCommands(program, out);
  registerSelectionsCommand(program, out);

  registerExportCommands(program, out);
  registerReviewCommands(program, out);
  registerTagCommand(program, out);
  registerDiffCommand(program, out);
  registerResetCommand(program, out);
  registerClusterCommands(program, out);

  program
    .command('demo')
    .description(
      'run init → embed → index → compare every method → export → report on the bundled CIFAR-10 caption sample (no network needed)',
    )
    .option(
      '--encoder <auto|id|dir|default>',
      `auto: ${DEMO_CLIP_MODEL} when it is in the local model cache, else the offline encoder (with a warning)`,
      'auto',
    )
    .option('--budgets <list>', 'budgets of the comparison and its curves', DEMO_BUDGETS.join(','))
    .action(async (o: { encoder: string; budgets: string }, cmd: Command) => {
      const workspace = workspaceOf(cmd, DEMO_WORKSPACE);
      const clock = new DemoClock();
      out(`clipcurate demo: reading the bundled sample ${DEMO_DATASET}\n`);
      await withCatalog(
        workspace,
        async (catalog) => {
          await ingestWithBar(catalog, DEMO_DATASET, {}, out);
          out(`\nworkspace ${workspace}: ${formatSummary(await catalog.summary())}\n\n`);
          clock.lap('read');
          const auto = o.encoder === 'auto';
          const embedded = await embedWithBar(catalog, workspace, {
            encoder: auto ? DEMO_CLIP_MODEL : o.encoder,
            device: 'auto',
            batchSize: 64,
            fitOptions: DEMO_OFFLINE_FIT,
            ...(auto
              ? {
                  allowRemote: false,
                  fallbackNote: `no CLIP model in the local cache (${DEMO_CLIP_MODEL}); pass --encoder ${DEMO_CLIP_MODEL} to download it, or --encoder <folder>`,
                }
              : {}),
          });
          out(formatEmbedReport(embedded) + '\n');
          if (embedded.fitted) out(DEMO_OFFLINE_FIT_NOTE + '\n');
          clock.lap('embed');
          await interruptible((signal) =>
            runDemoPipeline(
              catalog,
              workspace,
              out,
              o.budgets.split(',').map((b) => b.trim()),
              signal,
              embedded.encoder === OFFLINE_ENCODER_NAME ? 'default' : auto ? DEMO_CLIP_MODEL : o.encoder,
              clock,
            ),
          );
        },
        { create: true },
      );
    });

  return program;
}

interface EmbedCliOptions {
  encoder: string;
  /** Let transformers.js download a hub id (default true). */
  allowRemote?: boolean;
  /** Set only by the demo's `auto`: use the offline encoder when the CLIP model cannot be loaded, saying this. */
  fallbackNote?: string;
  device: Device;
  dtype?: 'fp32' | 'fp16' | 'q8';
  storeDtype?: 'float32' | 'float16';
  batchSize: number;
  threads?: number;
  refit?: boolean;
  /** Fit sizes when the offline encoder is fitted by this call (the demo's quicker fit). */
  fitOptions?: ResolveEncoderOptions['fitOptions'];
  /** Augmented views per image: embed their mean as a variant store instead of the main one. */
  views?: number;
  viewSeed?: number;
  /** Task I of an N-task array job. */
  slice?: EmbedSlice;
}

async function embedWithBar(
  catalog: Catalog,
  workspace: string,
  opts: EmbedCliOptions,
): Promise<EmbedReport & { encoderSeconds: number; fitted: boolean }> {
  const t0 = performance.now();
  let fitted = false;
  const encoder = await resolveEncoder(catalog, workspace, opts.encoder, {
    device: opts.device,
    ...(opts.dtype ? { dtype: opts.dtype } : {}),
    ...(opts.threads ? { intraOpThreads: opts.threads } : {}),
    ...(opts.refit ? { refit: true } : {}),
    ...(opts.fitOptions ? { fitOptions: opts.fitOptions } : {}),
    ...(opts.allowRemote === false ? { allowRemote: false } : {}),
    onStage: (stage) => {
      fitted = true;
      process.stderr.write(`  fitting the offline encoder: ${stage}\n`);
    },
    // Only the demo's `auto` may fall back to the offline encoder; a named model that fails is an error.
    ...(opts.fallbackNote ? { fallbackToOffline: () => warn(`warning: ${opts.fallbackNote}`) } : {}),
  });
  if (encoder.name === OFFLINE_ENCODER_NAME) {
    warn(
      `warning: using ${OFFLINE_ENCODER_NAME}; pass --encoder <CLIP folder or hub id> for CLIP embeddings`,
    );
  }
  if (encoder.providerNote) warn(encoder.providerNote);
  const encoderSeconds = (performance.now() - t0) / 1000;
  const viewOptions = opts.views ? { views: opts.views, seed: opts.viewSeed ?? 0 } : undefined;
  const variant = viewOptions ? viewsVariant(viewOptions) : undefined;
  if (viewOptions) {
    // The views are made of the workspace's own encoder: the main store must exist and match it.
    await requireEmbeddings(catalog, workspace);
    process.stderr.write(
      `  augmented views: ${viewOptions.views} per image → variant '${variant}' (pass --views ${variant} to select/compare)\n`,
    );
  }
  const used = viewOptions ? new AugmentedViewsEncoder(encoder, viewOptions) : encoder;
  const bar = embedBar(variant ? `embed ${variant}` : 'embed');
  try {
    const report = await interruptible((signal) =>
      embedCatalog(catalog, path.resolve(workspace), used, {
        ...(variant ? { variant } : {}),
        batchSize: opts.batchSize,
        ...(opts.storeDtype ? { dtype: opts.storeDtype } : {}),
        ...(opts.slice ? { slice: opts.slice } : {}),
        signal,
        onProgress: bar.update,
      }),
    );
    return { ...report, encoderSeconds, fitted };
  } finally {
    bar.stop();
    await encoder.dispose();
  }
}

/** The embed summary: the encoder's fit (or load) time is shown apart from, and added to, the embedding time. */
function formatEmbedReport(r: EmbedReport & { encoderSeconds: number; fitted: boolean }): string {
  const rate = r.samplesEmbedded
    ? `, ${Math.round(r.samplesPerSecond).toLocaleString('en-US')} samples/s`
    : '';
  const total = r.encoderSeconds + r.seconds;
  return (
    `embedded ${r.samplesEmbedded.toLocaleString('en-US')} samples with ${r.encoder} (${r.fingerprint}) ` +
    `in ${r.seconds.toFixed(1)} s${rate}, after ${r.encoderSeconds.toFixed(1)} s ${r.fitted ? 'fitting' : 'loading'} the encoder ` +
    `(total ${formatDuration(total)}); shards: ${r.partsEmbedded} written, ${r.partsUnchanged} already done` +
    (r.undecodable
      ? `; ${r.undecodable} images could not be decoded (see curate issues --kind undecodable-image)`
      : '') +
    (r.nonFinite
      ? `; ${r.nonFinite} samples got non-finite embeddings and were left out (see curate issues --kind non-finite-embedding)`
      : '') +
    (r.shardsRegistered ? `; registered ${r.shardsRegistered} shards written by array-job tasks` : '') +
    (r.slice
      ? `\ntask ${r.slice.index}/${r.slice.count} done: run \`curate embed\` without --shard once every task has finished, to register the shards in the catalog`
      : '')
  );
}

async function ingestWithBar(
  catalog: Catalog,
  spec: string,
  options: AddDatasetOptions,
  out: (s: string) => void,
) {
  const bar = ingestBar();
  try {
    const report = await interruptible((signal) =>
      addDataset(catalog, spec, { ...options, signal, onProgress: bar.update }),
    );
    bar.stop();
    out(formatIngestReport(report) + '\n');
  } finally {
    bar.stop();
  }
}

/** Run the CLI; resolves to the process exit code. */
export async function main(
  argv: string[],
  out: (text: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  // Dataset text reaches stdout in reports, tables and search hits: no control character gets through.
  const program = buildProgram((s) => out(printable(s, { multiline: true })));
  // Installed before the first await: from here on Ctrl-C stops the command with 130, never with a
  // half-handled error or the default kill.
  const trap = trapSignals();
  try {
    await program.parseAsync(argv);
    trap.signal.throwIfAborted();
    return EXIT.ok;
  } catch (caught) {
    const err = trap.signal.aborted ? (trap.signal.reason as Interrupted) : caught;
    if (err instanceof CommanderError) {
      // --help and --version arrive here as "errors" with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof Interrupted) {
      warn(err.message);
      return err.exitCode;
    }
    if (
      err instanceof UsageError ||
      err instanceof DatasetError ||
      err instanceof EncoderMismatchError ||
      err instanceof SelectionInputError ||
      err instanceof ClusterInputError ||
      err instanceof ExportInputError ||
      err instanceof ReviewInputError ||
      err instanceof ConfigError ||
      err instanceof EncoderLoadError ||
      err instanceof DeviceUnavailableError ||
      err instanceof WorkspaceStateError ||
      // A full or read-only disk is for the user to fix; the message names the file.
      err instanceof WriteError
    ) {
      warn(err.message);
      return EXIT.usage;
    }
    warn(err instanceof Error ? err.message : String(err));
    if (process.env.CURATE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return EXIT.failure;
  } finally {
    trap.release();
  }
}
