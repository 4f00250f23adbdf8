import { open, readFile, type FileHandle } from 'node:fs/promises';

/**
 * NumPy `.npy` (format 1.0) for 2-D little-endian float32 / float16 matrices, so numpy and faiss users
 * load our embeddings with `np.load`. float16 values travel as raw IEEE half bits (Uint16Array).
 */
export type NpyDtype = 'float32' | 'float16';
const DESCR: Record<NpyDtype, string> = { float32: '<f4', float16: '<f2' };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]);

/** Every header we write takes 128 bytes, so a streamed file can rewrite its shape in place at the end. */
const HEADER_BYTES = 128;

export function npyHeader(dtype: NpyDtype, rows: number, cols: number): Buffer {
  return headerOf(`{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`);
}

/** A format 1.0 header holding `dict`: magic (8) + length (2) + dict + padding + '\n' = 128 bytes, a multiple of 64 as the format asks. */
function headerOf(dict: string): Buffer {
  const textLength = HEADER_BYTES - MAGIC.length - 2;
  if (dict.length + 1 > textLength) throw new Error(`.npy shape too large for the header: ${dict}`);
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header);
  header.writeUInt16LE(textLength, MAGIC.length);
  header.write(dict.padEnd(textLength - 1, ' ') + '\n', MAGIC.length + 2, 'latin1');
  return header;
}

/** Appends rows to a 2-D `.npy` file and writes the final shape when finished: memory holds one batch. */
export class NpyWriter {
  private rows = 0;

  private constructor(
    private readonly handle: FileHandle,
    readonly dtype: NpyDtype,
    readonly cols: number,
  ) {}

  static async create(file: string, dtype: NpyDtype, cols: number): Promise<NpyWriter> {
    const handle = await open(file, 'w');
    await handle.write(npyHeader(dtype, 0, cols));
    return new NpyWriter(handle, dtype, cols);
  }

  async append(data: Float32Array): Promise<void> {
    const body = this.dtype === 'float32' ? data : floatsToHalves(data);
    await this.handle.write(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
    this.rows += data.length / this.cols;
  }

  /** Write the real shape into the header, sync and close. */
  async finish(): Promise<number> {
    await this.handle.write(npyHeader(this.dtype, this.rows, this.cols), 0, HEADER_BYTES, 0);
    await this.handle.sync();
    await this.handle.close();
    return this.rows;
  }

  async abandon(): Promise<void> {
    await this.handle.close();
  }
}

export interface NpyMatrix {
  dtype: NpyDtype;
  rows: number;
  cols: number;
  /** Float32 values (float16 files are widened on read). */
  data: Float32Array;
}

export function parseNpyHeader(bytes: Buffer): {
  dtype: NpyDtype;
  rows: number;
  cols: number;
  dataOffset: number;
} {
  const { text, dataOffset } = headerText(bytes);
  const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
  const shape = /'shape':\s*\((\d+),\s*(\d+)\)/.exec(text);
  const dtype = (Object.keys(DESCR) as NpyDtype[]).find((d) => DESCR[d] === descr);
  if (!dtype || !shape || /'fortran_order':\s*True/.test(text))
    throw new Error(`unsupported .npy header: ${text.trim()}`);
  return { dtype, rows: Number(shape[1]), cols: Number(shape[2]), dataOffset };
}

/** The header's dictionary text and where the data starts (format 1.0: 2-byte length, later: 4-byte). */
function headerText(bytes: Buffer): { text: string; dataOffset: number } {
  if (!bytes.subarray(0, 6).equals(MAGIC.subarray(0, 6))) throw new Error('not a .npy file (bad magic)');
  const lengthBytes = bytes[6] === 1 ? 2 : 4;
  const length = lengthBytes === 2 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const dataOffset = 8 + lengthBytes + length;
  return { text: bytes.toString('latin1', 8 + lengthBytes, dataOffset), dataOffset };
}

export async function readNpy(file: string): Promise<NpyMatrix> {
  const bytes = await readFile(file);
  const { dtype, rows, cols, dataOffset } = parseNpyHeader(bytes);
  const expected = rows * cols * (dtype === 'float32' ? 4 : 2);
  if (bytes.length - dataOffset !== expected) {
    throw new Error(
      `${file}: ${bytes.length - dataOffset} data bytes, expected ${expected} for ${rows}×${cols} ${dtype}`,
    );
  }
  const body = bytes.subarray(dataOffset);
  // A typed view needs an offset that is a multiple of the element size; npy headers pad the data to 64
  // bytes and large reads get their own buffer, so the copy is for the odd small, pooled read only.
  const elementBytes = dtype === 'float32' ? 4 : 2;
  const aligned = body.byteOffset % elementBytes === 0 ? body : Buffer.from(body);
  if (dtype === 'float32')
    return { dtype, rows, cols, data: new Float32Array(aligned.buffer, aligned.byteOffset, rows * cols) };
  const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, rows * cols);
  return { dtype, rows, cols, data: halvesToFloats(halves) };
}

/**
 * A 1-D little-endian int64 `.npy` (catalog ids: `np.load` gives an int64 vector), header then values.
 */
export function int64Npy(values: BigInt64Array): Buffer {
  const header = headerOf(`{'descr': '<i8', 'fortran_order': False, 'shape': (${values.length},), }`);
  return Buffer.concat([header, Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}

/** The values of a 1-D little-endian int64 `.npy` file; a wrong header or length is an error naming the file. */
export async function readInt64Npy(file: string): Promise<BigInt64Array> {
  const bytes = await readFile(file);
  let header: { text: string; dataOffset: number };
  try {
    header = headerText(bytes);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const { text, dataOffset } = header;
  const shape = /'shape':\s*\((\d+),\s*\)/.exec(text);
  if (!/'descr':\s*'<i8'/.test(text) || !shape || /'fortran_order':\s*True/.test(text))
    throw new Error(`${file}: not a 1-D int64 .npy (${text.trim()})`);
  const n = Number(shape[1]);
  const body = bytes.subarray(dataOffset);
  if (body.length !== n * 8)
    throw new Error(`${file}: ${body.length} data bytes, expected ${n * 8} for ${n} int64`);
  // As in readNpy: a view where the offset allows one, else one block copy.
  const aligned = body.byteOffset % 8 === 0 ? body : Buffer.from(body);
  return new BigInt64Array(aligned.buffer, aligned.byteOffset, n);
}

/** float32 values → float16 bits (a plain loop: `Uint16Array.from(data, floatToHalf)` is many times slower). */
export function floatsToHalves(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = floatToHalf(data[i]!);
  return out;
}

let halfTable: Float32Array | undefined;

/**
 * float16 bits → float32 values through a table of all 65,536 halves (exact: every half is a float32).
 * A plain loop over the table; `Float32Array.from(halves, halfToFloat)` took ~20 s for 100k × 512 × 2.
 * (A table of bit patterns copied as integers, or bit arithmetic for normal halves, were no faster:
 * the loop is bound by memory, ~5 ns a value here.)
 */
export function halvesToFloats(halves: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  const table = halfTable;
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
  return out;
}

export async function writeNpy(
  file: string,
  dtype: NpyDtype,
  data: Float32Array,
  cols: number,
): Promise<void> {
  const writer = await NpyWriter.create(file, dtype, cols);
  await writer.append(data);
  await writer.finish();
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 float32 → float16 bits, round to nearest even. */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && half & 1)) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1;
  return sign | half;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
