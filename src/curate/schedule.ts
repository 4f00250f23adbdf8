/**
 * Schedule files: what a dynamic method (CRAIG/AdaCore schedules, CREST, GRAFT, SeTa, augmentation
 * coresets) asks a trainer to use over the run. JSON Lines: a header line, then one line per round
 * with sample keys, mean-1 loss weights and the raw counts they came from. Format: docs/schedules.md.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Schedule } from '../select/contract.js';

export const SCHEDULE_FORMAT = 'clipcurate-schedule';
export const SCHEDULE_VERSION = 1;

export interface ScheduleHeader {
  format: typeof SCHEDULE_FORMAT;
  version: number;
  method: string;
  /** What the proxy simulation counted; rounds are placed by training progress in [0, 1). */
  unit: Schedule['unit'];
  total: number;
  rounds: number;
  /** Method parameters, seed, encoder… whatever the caller wants repeated with the file. */
  provenance?: Record<string, unknown>;
}

export interface ScheduleLine {
  round: number;
  start: number;
  end: number;
  keys: string[];
  /** Loss weights with mean 1 within the round (w = γ·|S|/Σγ, craig.md step 6). */
  weights: number[];
  /** Raw γ (cluster sizes) when the method weights, else absent. */
  counts?: number[];
  /** Mini-batch id per key when the round is a list of exact mini-batches (CREST). */
  batches?: number[];
  info?: Record<string, number | string>;
}

export async function writeSchedule(
  file: string,
  schedule: Schedule,
  keyOf: (index: number) => string,
  header: { method: string; provenance?: Record<string, unknown> },
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const out = createWriteStream(file);
  const write = async (value: unknown) => {
    if (!out.write(JSON.stringify(value) + '\n')) await once(out, 'drain');
  };
  const head: ScheduleHeader = {
    format: SCHEDULE_FORMAT,
    version: SCHEDULE_VERSION,
    method: header.method,
    unit: schedule.unit,
    total: schedule.total,
    rounds: schedule.rounds.length,
    ...(header.provenance ? { provenance: header.provenance } : {}),
  };
  await write(head);
  for (const [round, r] of schedule.rounds.entries()) {
    const counts = r.weights ? Array.from(r.weights) : undefined;
    const total = counts ? counts.reduce((a, b) => a + b, 0) : r.indices.length;
    const line: ScheduleLine = {
      round,
      start: r.start,
      end: r.end,
      keys: Array.from(r.indices, keyOf),
      weights: counts ? counts.map((c) => (c * r.indices.length) / total) : Array.from(r.indices, () => 1),
      ...(counts ? { counts } : {}),
      ...(r.batches ? { batches: Array.from(r.batches) } : {}),
      ...(r.info ? { info: r.info } : {}),
    };
    await write(line);
  }
  out.end();
  await once(out, 'finish');
}

export async function readSchedule(
  file: string,
): Promise<{ header: ScheduleHeader; rounds: ScheduleLine[] }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let header: ScheduleHeader | undefined;
  const rounds: ScheduleLine[] = [];
  let number = 0;
  for await (const text of lines) {
    number++;
    if (!text.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Error(`${file}:${number}: not JSON`);
    }
    if (!header) {
      const h = value as Partial<ScheduleHeader>;
      if (h.format !== SCHEDULE_FORMAT)
        throw new Error(`${file}:${number}: not a ${SCHEDULE_FORMAT} file (format ${String(h.format)})`);
      if (h.version !== SCHEDULE_VERSION)
        throw new Error(
          `${file}:${number}: schedule version ${String(h.version)}, this tool reads ${SCHEDULE_VERSION}`,
        );
      header = h as ScheduleHeader;
    } else rounds.push(value as ScheduleLine);
  }
  if (!header) throw new Error(`${file}: empty schedule file`);
  if (rounds.length !== header.rounds)
    throw new Error(`${file}: header announces ${header.rounds} rounds, found ${rounds.length}`);
  return { header, rounds };
}

/** The round in force at a training progress in [0, 1] (the last round covers progress 1). */
export function roundAt<T extends { start: number; end: number }>(rounds: readonly T[], progress: number): T {
  const found = rounds.find((r) => progress >= r.start && progress < r.end) ?? rounds.at(-1);
  if (!found) throw new Error('schedule has no rounds');
  return found;
}
