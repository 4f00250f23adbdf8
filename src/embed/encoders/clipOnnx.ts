import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSession, Tensor, type Device, type Session } from '../../compute/ort.js';
import {
  CLIP_PREPROCESSING,
  loadPreprocessorConfig,
  preprocessImage,
  type ImagePreprocessorConfig,
} from '../preprocess.js';
import { modelTakesEveryCore, whileModelRuns } from '../preprocessPool.js';
import { ClipTokenizer } from '../tokenizer.js';
import { runByCaptionLength, takesAnyLength } from './textLengths.js';
import { l2NormalizeRows, type Encoder } from './types.js';

export type Dtype = 'fp32' | 'fp16' | 'q8';
/** transformers.js' file suffixes per dtype (`src/utils/dtypes.js`). */
export const DTYPE_SUFFIX: Record<Dtype, string> = { fp32: '', fp16: '_fp16', q8: '_quantized' };

/** Where the known export layouts put their towers: HF/transformers.js, open_clip/immich, clip-as-service. */
const LAYOUTS = (suffix: string) => ({
  vision: [
    `onnx/vision_model${suffix}.onnx`,
    `vision_model${suffix}.onnx`,
    'visual/model.onnx',
    'visual.onnx',
    'image.onnx',
  ],
  text: [
    `onnx/text_model${suffix}.onnx`,
    `text_model${suffix}.onnx`,
    'textual/model.onnx',
    'textual.onnx',
    'text.onnx',
  ],
});

export interface ClipOnnxOptions {
  dtype?: Dtype;
  device?: Device;
  intraOpThreads?: number;
  /** See SessionOptions.spin; off by default here, since decoding shares the cores. */
  spin?: boolean;
}

export function findTowerFiles(folder: string, dtype: Dtype = 'fp32'): { vision: string; text: string } {
  const layouts = LAYOUTS(DTYPE_SUFFIX[dtype]);
  const find = (candidates: string[], tower: string) => {
    const hit = candidates.map((c) => path.join(folder, c)).find((f) => existsSync(f));
    if (!hit)
      throw new Error(
        `no ${tower} model in ${folder} for dtype ${dtype} (looked for ${candidates.join(', ')})`,
      );
    return hit;
  };
  return { vision: find(layouts.vision, 'image'), text: find(layouts.text, 'text') };
}

/** Pick the input a tower needs among the names it declares; a foreign export fails with a plain message. */
function requireInput(session: Session, file: string, candidates: string[]): string {
  const found = candidates.find((c) => session.inputNames.includes(c)) ?? session.inputNames[0];
  if (!found) throw new Error(`${file}: the model declares no input (expected ${candidates.join(' or ')})`);
  return found;
}

interface TowerNames {
  pixels: string;
  ids: string;
  mask?: string;
  image: string;
  textOut: string;
}

/** The text tower on a batch of captions → rows × dim, at each caption's own length where it can. */
async function runTextTower(
  session: Session,
  names: TowerNames,
  tokenizer: ClipTokenizer,
  texts: string[],
  anyLength: boolean,
): Promise<{ data: Float32Array; dim: number }> {
  return runByCaptionLength(tokenizer, texts, anyLength, async (ids, mask, rows, length) => {
    const shape = [rows, length];
    const feeds: Record<string, Tensor> = { [names.ids]: new Tensor('int64', ids, shape) };
    if (names.mask) feeds[names.mask] = new Tensor('int64', mask, shape);
    const out = (await session.run(feeds))[names.textOut]!;
    return { data: out.data as Float32Array, dim: out.dims[1] as number };
  });
}

/**
 * A CLIP model as two ONNX files run directly by onnxruntime-node, with sharp preprocessing and the
 * CLIP BPE tokenizer. Reads `preprocessor_config.json` and `tokenizer.json` from the folder when present,
 * else OpenAI CLIP's defaults.
 */
export class ClipOnnxEncoder implements Encoder {
  private constructor(
    readonly name: string,
    readonly fingerprint: string,
    readonly dim: number,
    readonly provider: string,
    readonly providerNote: string | undefined,
    private readonly vision: Session,
    private readonly text: Session,
    private readonly names: TowerNames,
    private readonly preprocessing: ImagePreprocessorConfig,
    private readonly tokenizer: ClipTokenizer,
    /** The vision model runs on every CPU core: preprocessing waits for the gaps between batches. */
    private readonly holdsPreprocessing: boolean,
    /** The text tower takes any sequence length, so captions run at their own (runTextTower). */
    readonly textAtCaptionLength: boolean,
  ) {}

  private batchBuffer = new Float32Array(0);
  private batchBufferInUse = false;

  static async load(folder: string, options: ClipOnnxOptions = {}): Promise<ClipOnnxEncoder> {
    const files = findTowerFiles(folder, options.dtype);
    const sessionOptions = {
      device: options.device ?? 'cpu',
      ...(options.intraOpThreads ? { intraOpThreads: options.intraOpThreads } : {}),
      spin: options.spin ?? false,
    };
    const [vision, text] = await Promise.all([
      createSession(files.vision, sessionOptions),
      createSession(files.text, sessionOptions),
    ]);
    const configFile = path.join(folder, 'preprocessor_config.json');
    const preprocessing = existsSync(configFile)
      ? await loadPreprocessorConfig(configFile)
      : CLIP_PREPROCESSING;
    const tokenizer = await ClipTokenizer.load(folder);

    const pixels = requireInput(vision.session, files.vision, ['pixel_values', 'image', 'input']);
    const ids = requireInput(text.session, files.text, ['input_ids', 'text', 'input']);
    const mask = text.session.inputNames.includes('attention_mask') ? 'attention_mask' : undefined;
    const image = vision.session.outputNames.includes('image_embeds')
      ? 'image_embeds'
      : vision.session.outputNames[0]!;
    const textOut = text.session.outputNames.includes('text_embeds')
      ? 'text_embeds'
      : text.session.outputNames[0]!;

    const hash = createHash('sha256');
    for (const f of [files.vision, files.text]) hash.update(await readFile(f));
    hash.update(JSON.stringify(preprocessing)).update(tokenizer.fingerprint);
    const names = { pixels, ids, ...(mask ? { mask } : {}), image, textOut };
    // The dimension is whatever the projection gives: learn it from one caption.
    const dynamicLength = takesAnyLength(text.session, ids);
    const { dim } = await runTextTower(text.session, names, tokenizer, ['a photo'], dynamicLength);
    const dtype = options.dtype && options.dtype !== 'fp32' ? `:${options.dtype}` : '';
    return new ClipOnnxEncoder(
      `clip-onnx:${path.basename(path.resolve(folder))}${dtype}`,
      `clip-onnx-${hash.digest('hex').slice(0, 16)}`,
      dim,
      vision.provider,
      vision.note,
      vision.session,
      text.session,
      names,
      preprocessing,
      tokenizer,
      vision.provider === 'cpu' && modelTakesEveryCore(options.intraOpThreads ?? 0),
      dynamicLength,
    );
  }

  prepareImage(bytes: Buffer): Promise<Float32Array> {
    return preprocessImage(bytes, this.preprocessing);
  }

  async embedPrepared(batch: Float32Array[]): Promise<Float32Array> {
    const { cropHeight: h, cropWidth: w } = this.preprocessing;
    // One batch buffer, reused: onnxruntime reads it only during `run` (a fresh 19 MB array per batch of
    // 32 kept the garbage collector busy on the thread that feeds the model; +0.04 on bench/embed's B/32
    // ratio). A call made while another is still running gets its own array.
    const size = 3 * h * w;
    const reuse = !this.batchBufferInUse;
    if (reuse && this.batchBuffer.length < batch.length * size)
      this.batchBuffer = new Float32Array(batch.length * size);
    const pixels = reuse
      ? this.batchBuffer.subarray(0, batch.length * size)
      : new Float32Array(batch.length * size);
    batch.forEach((image, i) => pixels.set(image, i * size));
    const input = new Tensor('float32', pixels, [batch.length, 3, h, w]);
    const run = () => this.vision.run({ [this.names.pixels]: input });
    if (reuse) this.batchBufferInUse = true;
    let out;
    try {
      out = await (this.holdsPreprocessing ? whileModelRuns(run) : run());
    } finally {
      if (reuse) this.batchBufferInUse = false;
    }
    return l2NormalizeRows(Float32Array.from(out[this.names.image]!.data as Float32Array), this.dim);
  }

  async embedTexts(texts: string[]): Promise<Float32Array> {
    const out = await runTextTower(this.text, this.names, this.tokenizer, texts, this.textAtCaptionLength);
    return l2NormalizeRows(Float32Array.from(out.data), this.dim);
  }

  async dispose(): Promise<void> {
    await Promise.all([this.vision.release(), this.text.release()]);
  }
}
