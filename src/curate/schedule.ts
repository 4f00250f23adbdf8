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
  /** What the proxy simulation counted; rounds are placed by training progress in [0, 1] (roundInForce). */
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
    } else rounds.push(checkRound(value as ScheduleLine, rounds.at(-1), `${file}:${number}`));
  }
  if (!header) throw new Error(`${file}: empty schedule file`);
  if (rounds.length !== header.rounds)
    throw new Error(`${file}: header announces ${header.rounds} rounds, found ${rounds.length}`);
  return { header, rounds };
}

/** What {@link roundInForce} relies on: rounds in start order, spans in [0, 1], one weight per key. */
function checkRound(line: ScheduleLine, previous: ScheduleLine | undefined, where: string): ScheduleLine {
  const { start, end, keys, weights } = line;
  if (!(start >= 0 && start < 1 && end >= start && end <= 1))
    throw new Error(`${where}: round ${line.round} spans [${start}, ${end}), not a span within [0, 1]`);
  if (previous && start < previous.start)
    throw new Error(
      `${where}: round ${line.round} starts at ${start}, before the previous round (${previous.start})`,
    );
  if (!Array.isArray(keys) || !Array.isArray(weights) || keys.length !== weights.length)
    throw new Error(`${where}: round ${line.round} needs one weight per key`);
  return line;
}

/**
 * Which round a trainer uses at a training progress p in [0, 1] (docs/schedules.md, "Which round
 * when"): the last round whose `start` ≤ p, so a round stays in force until the next one starts (a
 * gap between rounds keeps the earlier one; the last round covers p = 1). Before the first round's
 * start (CREST: its warm-up epoch) no round is in force: `undefined`, and the trainer uses every
 * exported sample with weight 1. Progress is epoch / epochs for `unit: "epoch"` schedules and
 * step / steps for `unit: "step"` ones (rounds can be shorter than an epoch there).
 */
export function roundInForce<T extends { start: number; end: number }>(
  rounds: readonly T[],
  progress: number,
): T | undefined {
  if (!Number.isFinite(progress) || progress < 0 || progress > 1)
    throw new RangeError(`training progress ${progress} is outside [0, 1]`);
  if (rounds.length === 0) throw new Error('schedule has no rounds');
  let found: T | undefined;
  for (const r of rounds) if (r.start <= progress) found = r;
  return found;
}

/** {@link roundInForce} where a round must be in force: progress in the warm-up is an error. */
export function roundAt<T extends { start: number; end: number }>(rounds: readonly T[], progress: number): T {
  const found = roundInForce(rounds, progress);
  if (!found)
    throw new RangeError(
      `training progress ${progress} is in the warm-up before the first round (starts at ${rounds[0]!.start}): ` +
        'no round is in force, train on the whole export with weight 1',
    );
  return found;
}

/** Every key the schedule's rounds name, once each, in order of first appearance (round by round). */
export function scheduleKeys(rounds: ReadonlyArray<Pick<ScheduleLine, 'keys'>>): string[] {
  const seen = new Set<string>();
  for (const r of rounds) for (const k of r.keys) seen.add(k);
  return [...seen];
}
