/** The benchmark data: ../shared's CIFAR-10 caption shards when present, else the bundled demo shards. */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared/data/cifar10-captions');
export const useShared = existsSync(SHARED);
const demo = (name: string) => path.join(ROOT, 'data/demo', name);

/** Shards 0–7: the pool that encoders are fitted on and methods select from. */
export const POOL_SPEC = useShared
  ? path.join(SHARED, 'train-{00000..00007}.tar.gz')
  : demo('cifar10-captions-0000.tar.gz');
/** Shards 8–10: held out (added after fitting; probes are tested on them). */
export const HELD_SPEC = useShared
  ? path.join(SHARED, 'train-{00008..00010}.tar.gz')
  : demo('cifar10-captions-0001.tar.gz');
export const ALL_SPEC = useShared
  ? path.join(SHARED, 'train-{00000..00010}.tar.gz')
  : demo('cifar10-captions-{0000..0001}.tar.gz');
export const DEMO_SPEC = demo('cifar10-captions-{0000..0001}.tar.gz');

export const log = (...a: unknown[]) => console.log(new Date().toISOString().slice(11, 19), ...a);
