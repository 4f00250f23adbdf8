/**
 * What every filter shares: it keeps each item that passes, in pool order. A budget smaller than what
 * passes cannot be honoured by a filter (which items to cut would be arbitrary), so it is an error that
 * says how many pass; a selector run with `from` on the filter's result is the way to cut further.
 */
import { SelectionInputError, type Selection, type TraceEvent } from '../contract.js';

export function keepPassing(
  method: string,
  pass: (i: number) => boolean,
  n: number,
  budget: number,
  trace: TraceEvent[],
  scores?: Float32Array,
): Selection {
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (pass(i)) kept.push(i);
  if (kept.length > budget)
    throw new SelectionInputError(
      `${method} keeps ${kept.length} of ${n} items, more than the budget of ${budget}: a filter keeps ` +
        'everything that passes, so leave the budget out (or give 100%), and select from its result ' +
        'with a second method (`from`) to cut it further',
    );
  return {
    indices: Int32Array.from(kept),
    ...(scores ? { scores } : {}),
    trace: [...trace, { stage: 'filter', message: `kept ${kept.length} of ${n}` }],
  };
}

/** "3 items" / "1 item". */
export function items(count: number): string {
  return `${count} item${count === 1 ? '' : 's'}`;
}
