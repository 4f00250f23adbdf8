/**
 * The data-path side of NeSSA-style per-shard selection (nessa.md §2–§3, our design [R]): which items
 * form a shard, how the budget splits over shards (N2), virtual partitions for non-random physical
 * shards (N5), and the two-tier byte accounting (N1) that the selector and the export step both report.
 */
import { SelectionInputError } from '../contract.js';

/** A ground set processed on its own: its id and its items in pool order. */
export interface Shard {
  id: number;
  members: number[];
}

/** Items grouped by shard id, shards in ascending id order (the deterministic processing order, §5). */
export function groupShards(shardOf: ArrayLike<number>): Shard[] {
  const byId = new Map<number, number[]>();
  for (let i = 0; i < shardOf.length; i++) {
    const s = shardOf[i]!;
    if (!Number.isInteger(s) || s < 0)
      throw new SelectionInputError(`item ${i} has shard id ${s}; shard ids must be whole numbers ≥ 0`);
    let members = byId.get(s);
    if (!members) byId.set(s, (members = []));
    members.push(i);
  }
  return [...byId.entries()].sort((a, b) => a[0] - b[0]).map(([id, members]) => ({ id, members }));
}

/**
 * (N2) Shard budgets by largest remainder: k_s = ⌊B·N_s/N⌋, the B − Σ⌊·⌋ leftover units to the largest
 * fractional parts, ties → lower shard (position) so Σ k_s = B exactly and k_s ≤ N_s. The remainders are
 * compared as integers, (B·N_s) mod N, so equal fractions tie exactly whatever floating point would do.
 */
export function shardBudgets(sizes: ArrayLike<number>, budget: number): Int32Array {
  const total = Array.from(sizes).reduce((a, b) => a + b, 0);
  if (!(budget >= 0 && budget <= total)) throw new Error(`shard budget ${budget} must lie in [0, ${total}]`);
  const out = new Int32Array(sizes.length);
  if (total === 0) return out;
  const remainders: Array<[number, number]> = [];
  let given = 0;
  for (let s = 0; s < sizes.length; s++) {
    const scaled = budget * sizes[s]!; // exact while B·N_s < 2^53
    out[s] = Math.floor(scaled / total);
    given += out[s]!;
    remainders.push([scaled - out[s]! * total, s]);
  }
  remainders.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  // Σ⌊·⌋ ≥ B − (#shards − 1) and a shard with remainder > 0 has ⌊·⌋ < N_s, so one pass settles it.
  for (const [rest, s] of remainders) {
    if (given >= budget) break;
    if (rest > 0) {
      out[s]! += 1;
      given += 1;
    }
  }
  return out;
}

/** Items per virtual partition when m is not given: CREST's GreeDi threshold (craig.md §5). */
export const VIRTUAL_PARTITION_SIZE = 50_000;

/**
 * Default m = ⌈N / 50,000⌉: CREST switches to partitioned greedy above 50,000 items, and with ~10
 * (pseudo-)classes a 50,000-item partition keeps every class block near the dense limit of 5,000.
 */
export function defaultPartitionCount(n: number): number {
  return Math.max(1, Math.ceil(n / VIRTUAL_PARTITION_SIZE));
}

/** MurmurHash3's 32-bit finaliser (fmix32): a bijection on 32-bit integers with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const encoder = new TextEncoder();

/**
 * hash(uid) of (N5). A string uid (sample key, URL): 32-bit FNV-1a over its UTF-8 bytes, then fmix32.
 * An integer uid (the item's pool index when the pool has no uids): fmix32 of its low 32 bits. The hash
 * is unsalted on purpose: an item's partition depends only on its uid, never on the seed, the physical
 * shard it sits in, or the order shards are read.
 */
export function uidHash(uid: string | number): number {
  if (typeof uid === 'number') return fmix32(uid >>> 0);
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(uid)) h = Math.imul(h ^ byte, 0x01000193);
  return fmix32(h >>> 0);
}

/** (N5) p(i) = hash(uid_i) mod m; uids default to the pool index. */
export function virtualPartitions(n: number, m: number, uids?: ArrayLike<string | number>): Int32Array {
  if (!(Number.isInteger(m) && m >= 1)) throw new Error(`partition count ${m} must be a whole number ≥ 1`);
  if (uids && uids.length !== n) throw new Error(`${uids.length} uids for ${n} items`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = uidHash(uids ? uids[i]! : i) % m;
  return out;
}

export interface DataMovement {
  /** Tier 1 read for the selection: N·d·(bytes per value)·(embedding matrices read). */
  tier1Read: number;
  /** Tier 2 (payload) bytes the selection would move: Σ payloadBytes over the picks; null when unknown. */
  tier2Selected: number | null;
  /** Tier 2 bytes of the whole pool (what full-data training moves); null when unknown. */
  tier2Pool: number | null;
  /** Bytes moved with selection, tier1Read + tier2Selected; null when unknown. */
  moved: number | null;
  /** (N1) N·tier2 / (N·tier1 + B·tier2) ≈ 1 / (f + tier1/tier2); null when payload sizes are unknown. */
  savingFactor: number | null;
}

/**
 * (N1) Two-tier byte accounting: selection reads tier 1 (embeddings) for every item and tier 2
 * (payloads) only for the picks. The one-off embedding pass over the payloads is not counted (§2).
 */
export function dataMovement(o: {
  n: number;
  dim: number;
  picks: ArrayLike<number>;
  payloadBytes?: ArrayLike<number>;
  /** 4 for fp32 embeddings, 2 for fp16. */
  bytesPerValue?: number;
  /** Embedding matrices read (2 when image and caption embeddings both feed the selection). */
  matrices?: number;
}): DataMovement {
  const tier1Read = o.n * o.dim * (o.bytesPerValue ?? 4) * (o.matrices ?? 1);
  const payload = o.payloadBytes;
  if (!payload) return { tier1Read, tier2Selected: null, tier2Pool: null, moved: null, savingFactor: null };
  if (payload.length !== o.n)
    throw new SelectionInputError(`${payload.length} payload sizes for ${o.n} items`);
  let tier2Pool = 0;
  for (let i = 0; i < o.n; i++) tier2Pool += payload[i]!;
  let tier2Selected = 0;
  for (let t = 0; t < o.picks.length; t++) tier2Selected += payload[o.picks[t]!]!;
  const moved = tier1Read + tier2Selected;
  return { tier1Read, tier2Selected, tier2Pool, moved, savingFactor: moved > 0 ? tier2Pool / moved : null };
}

function bytes(v: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let x = v;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${u === 0 ? x : x.toFixed(2)} ${units[u]} (${v} bytes)`;
}

/** One trace line for a DataMovement. */
export function describeDataMovement(m: DataMovement): string {
  const tier1 = `tier 1 read ${bytes(m.tier1Read)}`;
  if (m.tier2Selected === null || m.tier2Pool === null)
    return `${tier1}; tier 2 bytes unknown (no payload sizes), so no saving factor`;
  return (
    `${tier1}; tier 2 moved for the selection ${bytes(m.tier2Selected)} of ${bytes(m.tier2Pool)} in the pool; ` +
    `saving factor ${m.savingFactor === null ? 'n/a' : m.savingFactor.toFixed(3)}x`
  );
}
