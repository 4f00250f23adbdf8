/**
 * Filters on any field of the catalog, for the panel's grid and `curate tag --where`: the `samples`
 * table's columns, the keys inside each sample's `metadata` JSON (`metadata.label`), and the shown
 * selection's `score`. A filter is `field op value`; several are combined with AND.
 *
 * Everything the user typed reaches DuckDB as a bound parameter. Field names cannot be parameters, so
 * a field must be one `listFields` found (columns are then quoted identifiers from the catalog's own
 * schema; metadata keys become a bound JSON-pointer parameter).
 *
 * Semantics, chosen so a filter reads the way it looks in the panel:
 * - `=` compares as numbers when both sides are numbers (`label_index = 2.0` matches 2), else as text;
 * - `!=` is the complement of `=`: samples without the field match `!=`;
 * - `<` / `>` compare numbers only (a non-numeric value is an error; missing or non-numeric fields
 *   never match);
 * - `contains` is a case-insensitive substring test on the text of the value.
 */
import type { Catalog } from './catalog.js';

export const FILTER_OPS = ['=', '!=', '<', '>', 'contains'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export interface FieldFilter {
  /** A column (`width`), `metadata.<key>` (`metadata.label`) or `score`. */
  field: string;
  op: FilterOp;
  value: string;
}

export interface FilterField {
  name: string;
  source: 'column' | 'metadata' | 'selection';
  /** `number` fields are offered `<` and `>` first; any field accepts every operator. */
  type: 'number' | 'text' | 'json';
}

/** A filter naming an unknown field, an unknown operator, or `<` / `>` with a non-number. */
export class FilterInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterInputError';
  }
}

export const METADATA_PREFIX = 'metadata.';
/** Metadata keys listed at most (a catalog with per-sample keys would otherwise list millions). */
const MAX_METADATA_KEYS = 500;
const NUMERIC_TYPES =
  /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL)/;

/** Every filterable field of the catalog: columns, then metadata keys (sorted), then `score`. */
export async function listFields(catalog: Catalog): Promise<FilterField[]> {
  const columns = await catalog.rows<{ name: string; type: string }>(
    `SELECT column_name AS name, data_type AS type FROM duckdb_columns()
     WHERE table_name = 'samples' AND schema_name = 'main' AND database_name = current_database()
       AND column_name <> 'metadata'
     ORDER BY column_index`,
  );
  const keys = await catalog.rows<{ key: string }>(
    `SELECT DISTINCT unnest(json_keys(metadata)) AS key FROM samples ORDER BY key LIMIT ${MAX_METADATA_KEYS}`,
  );
  return [
    ...columns.map((c): FilterField => ({
      name: c.name,
      source: 'column',
      type: NUMERIC_TYPES.test(c.type) ? 'number' : 'text',
    })),
    ...keys.map((k): FilterField => ({
      name: `${METADATA_PREFIX}${k.key}`,
      source: 'metadata',
      type: 'json',
    })),
    { name: 'score', source: 'selection', type: 'number' },
  ];
}

export interface FilterSql {
  /** Conditions to AND into a WHERE clause over `samples s` (and the selection table `b`). */
  conditions: string[];
  params: Record<string, string | number>;
}

/**
 * SQL conditions for `filters`, with their parameters named `<prefix><i>…`. `fields` is the catalog's
 * `listFields` (checked here so no unknown name reaches the SQL text).
 */
export function filterSql(
  filters: readonly FieldFilter[],
  fields: readonly FilterField[],
  prefix = 'f',
): FilterSql {
  const known = new Map(fields.map((f) => [f.name, f]));
  const conditions: string[] = [];
  const params: Record<string, string | number> = {};
  filters.forEach((f, i) => {
    const field = known.get(f.field);
    if (!field)
      throw new FilterInputError(
        `filter on '${f.field}': no such field; fields are the sample columns, metadata.<key> and score`,
      );
    if (!(FILTER_OPS as readonly string[]).includes(f.op))
      throw new FilterInputError(
        `filter on '${f.field}': unknown operator '${f.op}'; use one of ${FILTER_OPS.join(' ')}`,
      );
    if (typeof f.value !== 'string')
      throw new FilterInputError(`filter on '${f.field}': the value must be text`);
    const p = `${prefix}${i}`;
    let expr: string;
    if (field.source === 'metadata') {
      params[`${p}path`] = jsonPointer(f.field.slice(METADATA_PREFIX.length));
      expr = `json_extract_string(s.metadata, $${p}path)`;
    } else if (field.source === 'selection') expr = 'b.score';
    else expr = `s."${field.name.replaceAll('"', '""')}"`;
    conditions.push(condition(expr, f, p, params));
  });
  return { conditions, params };
}

function condition(expr: string, f: FieldFilter, p: string, params: Record<string, string | number>): string {
  const text = `CAST(${expr} AS VARCHAR)`;
  const equal = `coalesce(TRY_CAST(${expr} AS DOUBLE) = TRY_CAST($${p} AS DOUBLE), ${text} = $${p})`;
  switch (f.op) {
    case '=':
      params[p] = f.value;
      return equal;
    case '!=':
      params[p] = f.value;
      return `NOT coalesce(${equal}, false)`;
    case '<':
    case '>': {
      const n = parseNumber(f.value);
      if (n === null)
        throw new FilterInputError(
          `filter ${f.field} ${f.op} ${f.value}: ${f.op} compares numbers and '${f.value}' is not a number`,
        );
      params[p] = n;
      return `coalesce(TRY_CAST(${expr} AS DOUBLE) ${f.op} $${p}::DOUBLE, false)`;
    }
    case 'contains':
      params[p] = f.value.toLowerCase();
      return `coalesce(contains(lower(${text}), $${p}), false)`;
  }
}

/** A finite number written plainly (`3`, `-0.5`, `1e3`), else null; blank text is not a number. */
export function parseNumber(text: string): number | null {
  if (text.trim() === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/** RFC 6901 pointer to a top-level key (so keys with `.`, `$` or `/` need no JSONPath quoting). */
function jsonPointer(key: string): string {
  return `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

/** Parse `field op value` as typed on the command line (`metadata.label=cat`, `width>32`, `caption~dog`). */
export function parseFilter(text: string): FieldFilter {
  const m = /^\s*([^=!<>~]+?)\s*(!=|=|<|>|~)\s*(.*)$/.exec(text);
  if (!m)
    throw new FilterInputError(
      `filter '${text}': write field, operator and value, e.g. metadata.label=cat, width>32, caption~dog ` +
        `(operators = != < > and ~ for contains)`,
    );
  const op = m[2] === '~' ? 'contains' : (m[2] as FilterOp);
  return { field: m[1]!, op, value: m[3]! };
}
