import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AutoTokenizer,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  env,
  Tensor as HfTensor,
  type PreTrainedModel,
} from '@huggingface/transformers';
import { providerFor, type Device, type Session } from '../../compute/ort.js';
import {
  CLIP_PREPROCESSING,
  loadPreprocessorConfig,
  preprocessImage,
  type ImagePreprocessorConfig,
} from '../preprocess.js';
import { BUNDLED_CLIP_TOKENIZER, ClipTokenizer, tokenizerFingerprint } from '../tokenizer.js';
import { DTYPE_SUFFIX, findTowerFiles, type Dtype } from './clipOnnx.js';
import { l2NormalizeRows, stack, type Encoder } from './types.js';
import { runByCaptionLength, takesAnyLength } from './textLengths.js';

export interface ClipHfOptions {
  dtype?: Dtype;
  device?: Device;
  /** Allow downloading from the Hugging Face hub (transformers.js caching). Off unless asked for. */
  allowRemote?: boolean;
  cacheDir?: string;
}

/**
 * CLIP in the Hugging Face layout through transformers.js: a hub model id (downloaded and cached the way
 * transformers.js does, when `allowRemote`) or a local folder. Images are preprocessed by our sharp
 * pipeline (antialiased resize, EXIF orientation), the same as the raw-ONNX path, so both paths give the
 * same embeddings for the same weights.
 */
export class ClipHfEncoder implements Encoder {
  private constructor(
    readonly name: string,
    readonly fingerprint: string,
    readonly dim: number,
    readonly provider: string,
    private readonly vision: PreTrainedModel,
    private readonly text: PreTrainedModel,
    private readonly tokenizer: ClipTokenizer,
    private readonly preprocessing: ImagePreprocessorConfig,
    /** The text tower takes any sequence length, so captions run at their own (textLengths.ts). */
    readonly textAtCaptionLength: boolean,
  ) {}

  /** Why the provider differs from the device asked for (`auto` without CUDA). */
  providerNote?: string;

  static async load(modelIdOrFolder: string, options: ClipHfOptions = {}): Promise<ClipHfEncoder> {
    const local = existsSync(modelIdOrFolder);
    const saved = {
      allowRemoteModels: env.allowRemoteModels,
      localModelPath: env.localModelPath,
      cacheDir: env.cacheDir,
    };
    env.allowRemoteModels = !local && (options.allowRemote ?? false);
    if (options.cacheDir) env.cacheDir = options.cacheDir;
    const id = local ? path.basename(path.resolve(modelIdOrFolder)) : modelIdOrFolder;
    if (local) env.localModelPath = path.dirname(path.resolve(modelIdOrFolder)) + path.sep;
    const { provider: device, note } = providerFor(options.device ?? 'auto');
    const dtype = options.dtype ?? 'fp32';
    try {
      const [vision, text, tokenizer] = await Promise.all([
        CLIPVisionModelWithProjection.from_pretrained(id, { dtype, device }),
        CLIPTextModelWithProjection.from_pretrained(id, { dtype, device }),
        AutoTokenizer.from_pretrained(id),
      ]);
      const folder = local ? path.resolve(modelIdOrFolder) : undefined;
      const configFile = folder && path.join(folder, 'preprocessor_config.json');
      const preprocessing =
        configFile && existsSync(configFile) ? await loadPreprocessorConfig(configFile) : CLIP_PREPROCESSING;
      const hash = createHash('sha256');
      if (folder) {
        // Same weights and preprocessing give the same fingerprint as the raw-ONNX path.
        const files = findTowerFiles(folder, dtype);
        for (const f of [files.vision, files.text]) hash.update(await readFile(f));
      } else {
        hash.update(`${modelIdOrFolder}${DTYPE_SUFFIX[dtype]}`);
      }
      hash
        .update(JSON.stringify(preprocessing))
        .update(await tokenizerFingerprint(folder ?? BUNDLED_CLIP_TOKENIZER));
      const clipTokenizer = ClipTokenizer.wrap(
        tokenizer,
        id,
        await tokenizerFingerprint(folder ?? BUNDLED_CLIP_TOKENIZER),
      );
      const anyLength = hfTextTakesAnyLength(text);
      const { dim } = await embedTexts(text, clipTokenizer, ['a photo'], anyLength);
      const name = `clip-hf:${id}${dtype === 'fp32' ? '' : `:${dtype}`}`;
      const fingerprint = `clip-onnx-${hash.digest('hex').slice(0, 16)}`;
      const encoder = new ClipHfEncoder(
        name,
        fingerprint,
        dim,
        device,
        vision,
        text,
        clipTokenizer,
        preprocessing,
        anyLength,
      );
      if (note) encoder.providerNote = note;
      return encoder;
    } finally {
      Object.assign(env, saved);
    }
  }

  prepareImage(bytes: Buffer): Promise<Float32Array> {
    return preprocessImage(bytes, this.preprocessing);
  }

  async embedPrepared(batch: Float32Array[]): Promise<Float32Array> {
    const { cropHeight: h, cropWidth: w } = this.preprocessing;
    const pixel_values = new HfTensor('float32', stack(batch), [batch.length, 3, h, w]);
    const { image_embeds } = (await this.vision({ pixel_values })) as { image_embeds: HfTensor };
    return l2NormalizeRows(Float32Array.from(image_embeds.data as Float32Array), image_embeds.dims[1]!);
  }

  async embedTexts(texts: string[]): Promise<Float32Array> {
    const out = await embedTexts(this.text, this.tokenizer, texts, this.textAtCaptionLength);
    return l2NormalizeRows(Float32Array.from(out.data), this.dim);
  }

  async dispose(): Promise<void> {
    await Promise.all([this.vision.dispose(), this.text.dispose()]);
  }
}

async function embedTexts(
  model: PreTrainedModel,
  tokenizer: ClipTokenizer,
  texts: string[],
  anyLength: boolean,
): Promise<{ data: Float32Array; dim: number }> {
  return runByCaptionLength(tokenizer, texts, anyLength, async (ids, mask, rows, length) => {
    const input_ids = new HfTensor('int64', ids, [rows, length]);
    const attention_mask = new HfTensor('int64', mask, [rows, length]);
    const out = ((await model({ input_ids, attention_mask })) as { text_embeds: HfTensor }).text_embeds;
    return { data: out.data as Float32Array, dim: out.dims[1]! };
  });
}

/**
 * Whether transformers.js's session of the text tower takes any sequence length. Its sessions are not
 * part of transformers.js's typed API: a model without the expected one is run at 77 tokens.
 */
function hfTextTakesAnyLength(model: PreTrainedModel): boolean {
  const session = (model as unknown as { sessions?: Record<string, Session> }).sessions?.model;
  return session ? takesAnyLength(session, 'input_ids') : false;
}
