import cliProgress from 'cli-progress';
import type { EmbedProgress, IngestProgress } from '../api.js';

/** A byte-based bar for reading datasets; silent when stderr is not a terminal (CI, pipes). */
export function ingestBar(): { update: (p: IngestProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format:
        ' {dataset} [{bar}] {percentage}% | part {part}/{parts} | {samples} samples, {issues} issues | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let samples = 0;
  let issues = 0;
  let lastPart = '';
  let partBase = { samples: 0, issues: 0 };
  return {
    update(p) {
      if (!started) {
        bar.start(Math.max(p.bytesTotal, 1), 0, {});
        started = true;
      }
      if (p.part !== lastPart) {
        partBase = { samples, issues };
        lastPart = p.part;
      }
      samples = partBase.samples + p.samples;
      issues = partBase.issues + p.issues;
      bar.update(p.bytesDone, { dataset: p.dataset, part: p.partIndex + 1, parts: p.parts, samples, issues });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Samples embedded out of the catalog's total, with rate and ETA; silent off a terminal. */
export function embedBar(label: string): { update: (p: EmbedProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: ` ${label} [{bar}] {percentage}% | {value}/{total} samples | part {part}/{parts} | {speed} samples/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const t0 = performance.now();
  let first = 0;
  return {
    update(p) {
      if (!started) {
        bar.start(Math.max(p.samplesTotal, 1), p.samplesDone, {});
        first = p.samplesDone;
        started = true;
      }
      const seconds = (performance.now() - t0) / 1000;
      const speed = seconds > 0 ? Math.round((p.samplesDone - first) / seconds) : 0;
      bar.update(p.samplesDone, { part: p.partsDone + 1, parts: p.parts, speed });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
