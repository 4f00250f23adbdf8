import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import { PACKAGE_ASSETS } from './env.js';
import { clipBasicClean, TEXT_CLEANING_VERSION } from './textClean.js';

/** The CLIP BPE tokenizer (OpenAI's files, MIT), used when a model folder ships none. */
export const BUNDLED_CLIP_TOKENIZER = path.join(PACKAGE_ASSETS, 'clip-vit-base-patch32');
export const CLIP_CONTEXT_LENGTH = 77;
const CLIP_EOS = 49407;

export interface TokenizedBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  length: number;
}

/**
 * A CLIP tokenizer from a folder holding `tokenizer.json` (+ config); padding and truncation to 77.
 * Captions are cleaned first as OpenAI's tokenizer does (`clipBasicClean`: ftfy, HTML entities), so
 * the ids match `clip.tokenize`; padding is <|endoftext|> with attention mask 0 where CLIP pads with 0.
 */
export class ClipTokenizer {
  private constructor(
    private readonly tokenizer: PreTrainedTokenizer,
    readonly source: string,
    /**
     * Content hash of `tokenizer.json` and the caption-cleaning version: the same files give the same
     * fingerprint wherever they live.
     */
    readonly fingerprint: string,
  ) {}

  static async load(folder?: string): Promise<ClipTokenizer> {
    const dir = folder && existsSync(path.join(folder, 'tokenizer.json')) ? folder : BUNDLED_CLIP_TOKENIZER;
    // Local files only: tests and offline machines must never reach a model hub.
    const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
    env.allowRemoteModels = false;
    env.localModelPath = path.dirname(dir) + path.sep;
    try {
      const tokenizer = await AutoTokenizer.from_pretrained(path.basename(dir));
      return new ClipTokenizer(tokenizer, dir, await tokenizerFingerprint(dir));
    } finally {
      Object.assign(env, saved);
    }
  }

  /** Wrap a tokenizer transformers.js loaded itself (a hub model id). */
  static wrap(tokenizer: PreTrainedTokenizer, source: string, fingerprint: string): ClipTokenizer {
    return new ClipTokenizer(tokenizer, source, fingerprint);
  }

  encode(texts: string[], length = CLIP_CONTEXT_LENGTH): TokenizedBatch {
    const cleaned = texts.map(clipBasicClean);
    const out = this.tokenizer(cleaned, { padding: 'max_length', max_length: length, truncation: true }) as {
      input_ids: { data: BigInt64Array };
      attention_mask: { data: BigInt64Array };
    };
    const ids = out.input_ids.data;
    const mask = out.attention_mask.data;
    // transformers.js truncates after adding the special tokens and so can cut off the closing EOS.
    // CLIP's text tower pools at EOS (the largest id), so put it back as OpenAI's tokenizer does.
    const eos = BigInt(this.tokenizer.eos_token_id ?? CLIP_EOS);
    for (let row = 0; row < texts.length; row++) {
      const last = row * length + length - 1;
      if (mask[last] === 1n && ids[last] !== eos) ids[last] = eos;
    }
    return { inputIds: ids, attentionMask: mask, length };
  }
}

export async function tokenizerFingerprint(folder: string): Promise<string> {
  const file = path.join(folder, 'tokenizer.json');
  const source = existsSync(file) ? file : path.join(BUNDLED_CLIP_TOKENIZER, 'tokenizer.json');
  return createHash('sha256')
    .update(await readFile(source))
    .update(TEXT_CLEANING_VERSION)
    .digest('hex')
    .slice(0, 12);
}
