/**
 * One config file per workspace (`<workspace>/curate.config.json`, or `--config FILE`) so a run can be
 * repeated exactly; command-line flags override it. Validated with zod: errors name the file and field.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const params = z.record(z.string(), z.unknown());

/** A random seed: the seeded generators take it as an unsigned 32-bit integer. */
export const seedSchema = z.number().int().min(0).max(0xffff_ffff);

export const curateConfigSchema = z
  .object({
    /** Metadata field with an integer class per sample (labels for per-class methods and the probe). */
    labelField: z.string().optional(),
    /** Augmented-view variant to attach (SAS). */
    views: z.string().optional(),
    /** Class names for zero-shot latent classes, as `--class-names` takes them: `a,b,c`, `@FILE` or `field:NAME`. */
    classNames: z.string().optional(),
    seed: seedSchema.optional(),
    embed: z
      .object({
        encoder: z.string(),
        device: z.enum(['cpu', 'cuda']),
        batchSize: z.number().int().positive(),
      })
      .partial()
      .strict()
      .optional(),
    select: z
      .object({ method: z.string(), budget: z.string(), name: z.string(), params })
      .partial()
      .strict()
      .optional(),
    compare: z
      .object({
        methods: z.array(z.string()),
        budget: z.string(),
        heldOut: z.number().gt(0).lt(1),
        /** Evaluators (`clip,ssl,probe`, `default` or `none`), as `--eval`. */
        eval: z.string(),
        /** Evaluation seeds, as `--eval-seeds`. */
        evalSeeds: z.number().int().min(1).max(100),
        /** Proxy training steps (the same for every subset), as `--proxy-steps`. */
        proxySteps: z.number().int().min(1).max(1_000_000),
        /** Parameters per method name. */
        params: z.record(z.string(), params),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict();

export type CurateConfig = z.infer<typeof curateConfigSchema>;

export const CONFIG_FILE = 'curate.config.json';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The given file, else the workspace's curate.config.json when present, else an empty config. */
export async function loadConfig(
  workspace: string,
  file?: string,
): Promise<CurateConfig & { file?: string }> {
  const chosen = file ?? path.join(workspace, CONFIG_FILE);
  if (!file && !existsSync(chosen)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(chosen, 'utf8'));
  } catch (err) {
    throw new ConfigError(
      `config ${chosen}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`,
    );
  }
  const parsed = curateConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(
      `config ${chosen}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  return { ...parsed.data, file: chosen };
}

/** `-p key=value` pairs → params; values are JSON when they parse (numbers, booleans, arrays), else strings. */
export function parseParamPairs(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new ConfigError(`method option '${pair}' must look like name=value`);
    const text = pair.slice(at + 1);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // a plain string
    }
    out[pair.slice(0, at)] = value;
  }
  return out;
}
