/**
 * Captions through a CLIP text tower at their own length. CLIP's text transformer is causal and pools
 * at the end token, so the padding after it never reaches the output: when the export takes any
 * sequence length, each caption runs at its own token count rounded up to one of TEXT_LENGTHS, captions
 * of one length together, instead of all 77 tokens. Real captions are short (CC3M's ~12 words), so this
 * does a fraction of the work, and a caption's embedding depends only on its own length, never on the
 * batch it came in. Both CLIP encoders (raw ONNX and transformers.js) run their text tower through it.
 */
import type { Session } from '../../compute/ort.js';
import type { ClipTokenizer } from '../tokenizer.js';

/** The token counts captions are rounded up to (77: CLIP's context, the longest). */
export const TEXT_LENGTHS = [16, 32, 48, 64, 77] as const;

/** One run of the text tower on `rows` captions of `length` tokens → rows × dim. */
export type TextTowerRun = (
  ids: BigInt64Array,
  mask: BigInt64Array,
  rows: number,
  length: number,
) => Promise<{ data: Float32Array; dim: number }>;

/** Whether a text tower's session takes any sequence length (a symbolic second dimension of its ids). */
export function takesAnyLength(session: Pick<Session, 'inputMetadata'>, ids: string): boolean {
  const meta = session.inputMetadata.find((m) => m.name === ids);
  return meta?.isTensor === true && typeof meta.shape[1] === 'string';
}

/**
 * The tower on captions: all at 77 tokens when the export is fixed, else one run per rounded length.
 * Rows come back in the captions' order.
 */
export async function runByCaptionLength(
  tokenizer: ClipTokenizer,
  texts: string[],
  anyLength: boolean,
  run: TextTowerRun,
): Promise<{ data: Float32Array; dim: number }> {
  const tokens = tokenizer.encode(texts);
  const rows = texts.length;
  const full = tokens.length;
  if (!anyLength) return run(tokens.inputIds, tokens.attentionMask, rows, full);
  const groups = new Map<number, number[]>();
  for (let row = 0; row < rows; row++) {
    let used = 0;
    for (let t = 0; t < full; t++) if (tokens.attentionMask[row * full + t] === 1n) used = t + 1;
    const length = TEXT_LENGTHS.find((l) => l >= used && l <= full) ?? full;
    (groups.get(length) ?? groups.set(length, []).get(length)!).push(row);
  }
  let out: Float32Array | undefined;
  let dim = 0;
  for (const [length, members] of groups) {
    const ids = new BigInt64Array(members.length * length);
    const mask = new BigInt64Array(members.length * length);
    members.forEach((row, r) => {
      ids.set(tokens.inputIds.subarray(row * full, row * full + length), r * length);
      mask.set(tokens.attentionMask.subarray(row * full, row * full + length), r * length);
    });
    const part = await run(ids, mask, members.length, length);
    dim = part.dim;
    out ??= new Float32Array(rows * dim);
    members.forEach((row, r) => out!.set(part.data.subarray(r * dim, (r + 1) * dim), row * dim));
  }
  return { data: out ?? new Float32Array(0), dim };
}
