/**
 * Parsers for the CLI's numeric options, one zod schema each: a bad value stops the command before any
 * work with `--batch-size must be an integer ≥ 1 (got "0")`, exit code 2. Commander calls the parser with
 * the raw text; {@link UsageError} passes through commander unchanged and `main` maps it to exit 2.
 */
import { Option } from 'commander';
import { z } from 'zod';
import { seedSchema } from '../config.js';

/** Bad usage or input found by the CLI itself (an option value, a missing prerequisite): exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Whole decimal numbers only: no "1.5", "1e3", "0x10", "12abc" or "" (Number() would take some of them). */
const integerText = z
  .string()
  .trim()
  .regex(/^[+-]?\d{1,16}$/)
  .transform(Number);

/** A decimal number ("0.2", ".2", "2e-1"); Infinity and NaN are refused by z.number(). */
const numberText = z
  .string()
  .trim()
  .regex(/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i)
  .transform(Number);

/** A commander argument parser from a schema over the option's text; `expected` completes "must be …". */
export function optionParser<T>(
  flag: string,
  expected: string,
  schema: z.ZodType<T, string>,
): (value: string) => T {
  return (value: string) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new UsageError(`${flag} must be ${expected} (got ${JSON.stringify(value)})`);
    return parsed.data;
  };
}

export interface IntegerRange {
  min: number;
  max?: number;
}

/** "an integer ≥ 1", "an integer from 2 to 512". */
function describeRange({ min, max }: IntegerRange): string {
  return max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
}

export function integerParser(flag: string, range: IntegerRange): (value: string) => number {
  let bounded = z.number().int().min(range.min);
  if (range.max !== undefined) bounded = bounded.max(range.max);
  return optionParser(flag, describeRange(range), integerText.pipe(bounded));
}

/** A share strictly between 0 and 1 (e.g. `--held-out 0.2`). */
export function fractionParser(flag: string): (value: string) => number {
  return optionParser(flag, 'a number between 0 and 1, exclusive', numberText.pipe(z.number().gt(0).lt(1)));
}

/** The random seed: an integer from 0 to 2³² − 1, as the seeded generators use it. */
export function seedParser(flag = '--seed'): (value: string) => number {
  return optionParser(flag, 'an integer from 0 to 4294967295', integerText.pipe(seedSchema));
}

/** An option whose parser is named after its own long flag (or short one, for `-k`). */
function withParser<T>(
  flags: string,
  description: string,
  parser: (flag: string) => (value: string) => T,
  fallback?: T,
): Option {
  const option = new Option(flags, description);
  option.argParser(parser(option.long ?? option.short ?? flags));
  if (fallback !== undefined) option.default(fallback);
  return option;
}

/** `new Option(flags, description)` that takes an integer in `range`, with an optional default. */
export function integerOption(
  flags: string,
  description: string,
  range: IntegerRange,
  fallback?: number,
): Option {
  return withParser(flags, description, (flag) => integerParser(flag, range), fallback);
}

export function fractionOption(flags: string, description: string): Option {
  return withParser(flags, description, fractionParser);
}

export function seedOption(flags = '--seed <n>', description = 'random seed (default 0)'): Option {
  return withParser(flags, description, seedParser);
}

/** Limits of the numeric options, in one place (the tests and `--help` read the same numbers). */
export const LIMITS = {
  batchSize: { min: 1, max: 65_536 },
  partitions: { min: 1, max: 100_000 },
  threads: { min: 1, max: 1_024 },
  /** hnswlib's M: below 2 the graph cannot link (M = 0 crashes the native code); above 512 it only wastes memory. */
  m: { min: 2, max: 512 },
  efConstruction: { min: 1, max: 100_000 },
  shards: { min: 1, max: 1_024 },
  k: { min: 1, max: 10_000 },
  limit: { min: 1 },
  shardSize: { min: 1 },
  evalSeeds: { min: 1, max: 100 },
  poolSample: { min: 2 },
  views: { min: 1, max: 64 },
  viewSeed: { min: 0 },
  proxySteps: { min: 1, max: 1_000_000 },
  proxyBatch: { min: 2, max: 65_536 },
} as const satisfies Record<string, IntegerRange>;
