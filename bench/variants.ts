/**
 * Benchmark rows for parameter variants of a registered method (e.g. CRAIG's gradient mode next to its
 * default feature mode), so both line up in one table. `--methods=` accepts these names too.
 */
import { registry, getSelector } from '../src/select/registry.js';

export const VARIANTS: Record<string, { method: string; params: Record<string, unknown> }> = {
  'craig-gradients': { method: 'craig', params: { mode: 'gradients' } },
};

export function resolveMethod(name: string) {
  const variant = VARIANTS[name];
  return variant
    ? { selector: getSelector(variant.method), params: variant.params }
    : { selector: getSelector(name), params: {} };
}

/** Registry order with each variant right after its method. */
export function benchMethods(): string[] {
  return [...registry.keys()].flatMap((m) => [
    m,
    ...Object.entries(VARIANTS)
      .filter(([, v]) => v.method === m)
      .map(([name]) => name),
  ]);
}
