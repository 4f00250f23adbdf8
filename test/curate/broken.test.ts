import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog, DatasetError, type IngestReport } from '../../src/curate/api.js';
import { BROKEN, tempDir } from '../helpers.js';

interface BrokenCase {
  file: string;
  key?: string;
  kind: string;
  what: string;
}

interface IssueRow {
  file: string;
  key: string | null;
  kind: string;
  severity: string;
  where: string | null;
  reason: string;
}

/** Each broken input is added as its own dataset, as a user would, into one workspace. */
const INPUTS = {
  'tar/broken-000.tar': 4, // good1, good2 (png), badutf8 and badjson (both kept with a warning)
  'tar/truncated.tar': 3, // three whole samples before the cut
  'tar/truncated.tar.gz': undefined, // as many as the 60% of the gzip stream holds
  folder: 3, // good, nested/deep, badutf8
  'manifest.csv': 3, // m-good, m-good2, m-badutf8 (kept); m-lost is swallowed by the unclosed quote
  'manifest.jsonl': 2, // j-good, j-good2
  'img2dataset.parquet': 1, // p-good
} as const;

describe('the broken-input corpus', () => {
  let catalog: Catalog;
  const reports = new Map<string, IngestReport>();
  let issues: IssueRow[];

  beforeAll(async () => {
    catalog = await Catalog.open(await tempDir({ forFile: true }));
    for (const input of Object.keys(INPUTS))
      reports.set(input, await addDataset(catalog, input, { cwd: BROKEN }));
    issues = await catalog.rows<IssueRow>('SELECT file, key, kind, severity, "where", reason FROM issues');
  });
  afterAll(() => catalog?.close());

  it('yields the named issue for every case, with file and key', async () => {
    const cases = JSON.parse(await readFile(path.join(BROKEN, 'CASES.json'), 'utf8')) as BrokenCase[];
    expect(cases.length).toBeGreaterThan(25);
    const remaining = [...issues];
    for (const c of cases) {
      if (c.file === 'tar/not-a-tar.tar') continue; // an unusable dataset on its own: see below
      const file = path.join(BROKEN, c.file);
      const at = remaining.findIndex(
        (i) => i.kind === c.kind && i.file === file && (!c.key || i.key === c.key),
      );
      expect(at, `${c.kind} for ${c.file}${c.key ? ` key ${c.key}` : ''} (${c.what})`).toBeGreaterThanOrEqual(
        0,
      );
      expect(remaining[at]!.reason.length).toBeGreaterThan(10);
      remaining.splice(at, 1);
    }
  });

  it('goes on after each bad sample: the good samples around them are all kept', () => {
    for (const [input, expected] of Object.entries(INPUTS)) {
      const report = reports.get(input)!;
      if (expected !== undefined) expect(report.samples, input).toBe(expected);
      expect(report.partsRead, input).toBe(1);
    }
    expect(reports.get('tar/truncated.tar.gz')!.samples).toBeGreaterThan(0);
  });

  it('keeps samples with warnings: invalid UTF-8 captions get U+FFFD, broken json loses only metadata', async () => {
    const kept = await catalog.rows<{ key: string; caption: string; metadata: string }>(
      `SELECT key, caption, metadata::VARCHAR AS metadata FROM samples WHERE source_key IN ('badutf8', 'm-badutf8', 'badjson')`,
    );
    const utf8 = kept.filter((k) => k.key.endsWith('badutf8'));
    expect(utf8).toHaveLength(3);
    for (const k of utf8) expect(k.caption).toMatch(/^a photo of a \uFFFD+.* cat$/);
    expect(kept.find((k) => k.key === 'badjson')!.metadata).toBe('{}');
    const warnings = issues.filter((i) => i.severity === 'warning').map((i) => i.kind);
    expect(new Set(warnings)).toEqual(new Set(['invalid-utf8', 'malformed-json']));
  });

  it('points each issue at the line, row or member it came from', () => {
    const byKey = (key: string) => issues.find((i) => i.key === key)!;
    expect(byKey('m-remote').where).toBe('line 4');
    expect(byKey('m-nocap').where).toBe('line 6');
    expect(issues.find((i) => i.kind === 'duplicate-key' && i.key === 'm-good')!.where).toBe('line 8');
    expect(byKey('p-failed')).toMatchObject({ where: 'row 1', kind: 'remote-image' });
    expect(byKey('p-failed').reason).toContain('HTTP Error 404');
    expect(byKey('zero').where ?? '').toMatch(/zero\.jpg|^$/);
  });

  it('an input with nothing usable gives one clear DatasetError, and its issue is still recorded', async () => {
    await expect(addDataset(catalog, 'tar/not-a-tar.tar', { cwd: BROKEN })).rejects.toThrow(
      new DatasetError(`no usable samples in 'tar/not-a-tar.tar'; issues: 1 truncated-archive`),
    );
    const [row] = await catalog.rows<IssueRow>(`SELECT * FROM issues WHERE file LIKE '%not-a-tar.tar'`);
    expect(row!.reason).toMatch(/Invalid tar header/);
  });
});
