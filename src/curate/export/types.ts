import type { ReviewEffect } from './plan.js';
/** A request the export cannot carry out as given (format, shard size, a non-empty folder): exit 2. */
export class ExportInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportInputError';
  }
}

export const EXPORT_FORMATS = ['webdataset', 'jsonl', 'csv', 'parquet', 'keys'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** `collect`: reading archives (tar shards, manifests holding image bytes) once each; `write`: writing. */
export type ExportPhase = 'collect' | 'write';

export interface ExportOptions {
  format: ExportFormat;
  /** Folder the export goes to; created if needed. Nothing is ever written outside it. */
  out: string;
  /** Replace the previous export in a non-empty `out` (other files there are left alone). */
  overwrite?: boolean;
  /** Samples per WebDataset shard (default 10,000). */
  shardSize?: number;
  /** Samples done of the phase's total. */
  onProgress?: (done: number, total: number, phase: ExportPhase) => void;
  signal?: AbortSignal;
  /**
   * Bytes of archive members held in memory between collecting and writing; beyond it they go to a
   * spool file in a temporary folder inside `out` (default 256 MiB).
   */
  memoryBytes?: number;
}

export interface SkippedSample {
  /** 0-based position in the selection's pick order. */
  rank: number;
  key: string;
  sampleId: number;
  /** The source file at fault, when there is one. */
  file?: string;
  reason: string;
}

export interface ExportedFile {
  /** File name inside `out`. */
  name: string;
  bytes: number;
  sha256: string;
  /** Samples in the file (shards, manifests, keys.txt). */
  samples?: number;
}

export interface ExportBytes {
  /** Bytes read from source files (whole tar shards up to the last selected member, image files). */
  sourceRead: number;
  /** Image bytes of the exported samples as read from their sources. */
  payloadRead: number;
  /**
   * Sample bytes written into shards: image, caption and a tar source's other members (`.cls`,
   * `.json`, …), not NAME.curate.json; 0 for manifests and keys, which reference sources.
   */
  payloadWritten: number;
  /** Bytes of the files written, provenance.json not counted. */
  written: number;
  /**
   * Tier-2 bytes (image + caption, nessa.md N1) of the exported samples and of the selection's pool,
   * and their ratio: what training on the export moves instead of the whole pool. Null when unknown.
   */
  tier2Selected: number | null;
  tier2Pool: number | null;
  savingFactor: number | null;
}

export interface ExportReport {
  selection: string;
  format: ExportFormat;
  out: string;
  /** Picks in the stored selection. */
  picks: number;
  /** Samples exported. */
  samples: number;
  files: ExportedFile[];
  skipped: SkippedSample[];
  /** What manual review changed: rejected picks left out, accepted samples added. */
  review: ReviewEffect;
  bytes: ExportBytes;
  /** Dynamic selections: the schedule copied beside the export and what of it the export holds. */
  schedule?: ExportSchedule;
  /** Things to know that did not stop the export (catalog changed since the selection, …). */
  warnings: string[];
  seconds: number;
}

/** A dynamic selection's export: the union of its schedule's rounds, with schedule.jsonl beside it. */
export interface ExportSchedule {
  file: 'schedule.jsonl';
  rounds: number;
  /** Distinct keys over all rounds. */
  keys: number;
  /** Samples exported: static picks + schedule-only keys (+ accepted), after skips. */
  samples: number;
  /** Exported samples that only the schedule names (weight_raw 0). */
  scheduleOnly: number;
  /** Schedule keys the export does not hold (skipped, or rejected in review). */
  keysOutsideExport: number;
  /** One line for people: what was exported and where the schedule is. */
  summary: string;
  rule: string;
}
