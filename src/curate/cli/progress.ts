/**
 * Progress of long steps, on stderr. On a terminal: a bar redrawn in place (cli-progress). Anywhere else
 * (`2>&1 | tee`, a Slurm or CI log): one plain line at the start, every few seconds, and at the end,
 * with step, done/total, rate and ETA, so a log shows the run is alive and how far it got.
 *
 * The interval of the plain lines is `CURATE_PROGRESS_SECONDS` (default 10; 0 = on every update).
 */
import cliProgress from 'cli-progress';
import type { EmbedProgress, IngestProgress } from '../api.js';

type Payload = Record<string, string | number>;

export interface ProgressLine {
  /** Start (or restart, for a new phase) at `done` of `total`; the payload fills the format's fields. */
  start(total: number, done: number, payload?: Payload): void;
  update(done: number, payload?: Payload): void;
  /** End the display; `ok = false` (the step failed or was interrupted) says "stopped" instead of "done". */
  stop(ok?: boolean): void;
}

export interface ProgressSpec {
  /** Step name at the start of every line ("embed", "index", "read wds"). */
  label: string;
  /** What is counted ("samples", "vectors", "bytes": bytes print as MiB). */
  unit: string;
  /** The bar's layout on a terminal (cli-progress tokens: {bar}, {value}, {total}, {eta_formatted}, payload keys). */
  format: string;
  /** Payload fields appended to a plain line as "key value" ("part 2/3"): a function of the payload. */
  details?: (payload: Payload) => string;
  stream?: NodeJS.WriteStream;
  /** How many recent updates the terminal bar's ETA averages over. */
  etaBuffer?: number;
}

const DEFAULT_INTERVAL_SECONDS = 10;

function intervalMs(): number {
  const raw = process.env.CURATE_PROGRESS_SECONDS;
  const seconds = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return (Number.isFinite(seconds) && seconds >= 0 ? seconds : DEFAULT_INTERVAL_SECONDS) * 1000;
}

/** A bar on a terminal, plain lines elsewhere. */
export function progressLine(spec: ProgressSpec): ProgressLine {
  const stream = spec.stream ?? process.stderr;
  return stream.isTTY ? terminalBar(spec, stream) : plainLines(spec, stream);
}

function terminalBar(spec: ProgressSpec, stream: NodeJS.WriteStream): ProgressLine {
  const bar = new cliProgress.SingleBar(
    { stream, format: spec.format, hideCursor: true, etaBuffer: spec.etaBuffer ?? 50 },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  return {
    // The first frame is drawn by start(): it gets the payload, so no "{field}" is ever shown raw.
    start(total, done, payload = {}) {
      if (running) bar.stop();
      bar.start(Math.max(total, 1), done, payload);
      running = true;
    },
    update(done, payload) {
      if (running) bar.update(done, payload ?? {});
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

/** "1h 02m", "3m 05s", "42s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

function plainLines(spec: ProgressSpec, stream: NodeJS.WriteStream): ProgressLine {
  const every = intervalMs();
  const bytes = spec.unit === 'bytes';
  const amount = (n: number) => (bytes ? `${(n / 2 ** 20).toFixed(1)} MiB` : count(n));
  const unit = bytes ? '' : ` ${spec.unit}`;
  const rateUnit = bytes ? 'MiB/s' : `${spec.unit}/s`;
  // Slow steps (a method run, a shard) read better as seconds per item than as "0 items/s".
  const rateOf = (perSecond: number) =>
    bytes
      ? `${(perSecond / 2 ** 20).toFixed(1)} ${rateUnit}`
      : perSecond >= 1 || perSecond === 0
        ? `${count(perSecond)} ${rateUnit}`
        : `${(1 / perSecond).toFixed(1)} s per ${spec.unit.replace(/s$/, '')}`;
  let state:
    | { total: number; first: number; done: number; t0: number; lastPrint: number; payload: Payload }
    | undefined;

  const print = (final: boolean, ok = true) => {
    if (!state) return;
    const { total, first, done, t0, payload } = state;
    const seconds = (performance.now() - t0) / 1000;
    const share = total > 0 ? ` (${Math.floor((100 * done) / total)}%)` : '';
    const perSecond = seconds > 0 ? (done - first) / seconds : 0;
    // A total of 0 is unknown (a `pipe:` shard's size): the amount so far and the rate, no share or ETA.
    const eta = total > 0 ? `, ETA ${formatDuration(perSecond > 0 ? (total - done) / perSecond : NaN)}` : '';
    const pace = final || done === first ? '' : `, ${rateOf(perSecond)}${eta}`;
    const took = final ? `, ${ok ? 'done in' : 'stopped after'} ${formatDuration(seconds)}` : '';
    const details = spec.details?.(payload);
    stream.write(
      `${spec.label}: ${amount(done)}${total > 0 ? `/${amount(total)}` : ''}${unit}${share}${pace}${took}${details ? ` | ${details}` : ''}\n`,
    );
    state.lastPrint = performance.now();
  };

  return {
    start(total, done, payload = {}) {
      if (state) print(true);
      state = { total, first: done, done, t0: performance.now(), lastPrint: 0, payload };
      print(false);
    },
    update(done, payload) {
      if (!state) return;
      state.done = done;
      if (payload) state.payload = { ...state.payload, ...payload };
      if (performance.now() - state.lastPrint >= every) print(false);
    },
    stop(ok = true) {
      print(true, ok);
      state = undefined;
    },
  };
}

/** Bytes read of every part of a dataset, with part, sample and issue counts. */
export function ingestBar(): { update: (p: IngestProgress) => void; stop: () => void } {
  let progress: ProgressLine | undefined;
  let samples = 0;
  let issues = 0;
  let lastPart = '';
  let partBase = { samples: 0, issues: 0 };
  return {
    update(p) {
      if (p.part !== lastPart) {
        partBase = { samples, issues };
        lastPart = p.part;
      }
      samples = partBase.samples + p.samples;
      issues = partBase.issues + p.issues;
      const payload = { dataset: p.dataset, part: p.partIndex + 1, parts: p.parts, samples, issues };
      if (!progress) {
        progress = progressLine({
          label: `read ${p.dataset}`,
          unit: 'bytes',
          format:
            ' {dataset} [{bar}] {percentage}% | part {part}/{parts} | {samples} samples, {issues} issues | ETA {eta_formatted}',
          details: (x) =>
            `part ${x.part}/${x.parts}, ${count(Number(x.samples))} samples, ${x.issues} issues`,
        });
        progress.start(p.bytesTotal, p.bytesDone, payload);
      } else progress.update(p.bytesDone, payload);
    },
    stop() {
      progress?.stop();
      progress = undefined;
    },
  };
}

/** Samples embedded out of the catalog's total, with rate, ETA and the shard being written. */
export function embedBar(label: string): { update: (p: EmbedProgress) => void; stop: () => void } {
  let progress: ProgressLine | undefined;
  const t0 = performance.now();
  let first = 0;
  return {
    update(p) {
      const seconds = (performance.now() - t0) / 1000;
      const speed = progress && seconds > 0 ? Math.round((p.samplesDone - first) / seconds) : 0;
      const payload = { part: p.partsDone + 1, parts: p.parts, speed };
      if (!progress) {
        first = p.samplesDone;
        progress = progressLine({
          label,
          unit: 'samples',
          format: ` ${label} [{bar}] {percentage}% | {value}/{total} samples | part {part}/{parts} | {speed} samples/s | ETA {eta_formatted}`,
          details: (x) => `part ${x.part}/${x.parts}`,
          etaBuffer: 200,
        });
        progress.start(p.samplesTotal, p.samplesDone, payload);
      } else progress.update(p.samplesDone, payload);
    },
    stop() {
      progress?.stop();
    },
  };
}

/** A counted step with no extra fields (index build, compare runs, export phases). */
export function countBar(label: string, unit: string, details?: ProgressSpec['details']): ProgressLine {
  return progressLine({
    label,
    unit,
    format: ` ${label} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}`,
    ...(details ? { details } : {}),
  });
}
