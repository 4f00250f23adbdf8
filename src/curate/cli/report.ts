import type { CatalogSummary, IngestReport, IssueCount } from '../api.js';
import { printable as p } from './escape.js';

const n = (x: number) => x.toLocaleString('en-US');

export function formatIngestReport(r: IngestReport): string {
  const rate = r.seconds > 0 ? ` (${n(Math.round(r.samplesRead / r.seconds))} samples/s)` : '';
  const parts = [`${r.partsRead} read`, `${r.partsUnchanged} unchanged`];
  if (r.partsRemoved) parts.push(`${r.partsRemoved} removed`);
  const lines = [
    `dataset '${p(r.dataset.name)}' (${r.dataset.format}): ${n(r.samples)} samples; parts: ${parts.join(', ')}; ` +
      `read ${n(r.samplesRead)} samples in ${r.seconds.toFixed(1)} s${rate}`,
  ];
  const dup = r.exactDuplicates;
  if (dup.copies > 0)
    lines.push(
      `  ${n(dup.copies)} image${dup.copies === 1 ? ' is a byte-identical copy' : 's are byte-identical copies'} ` +
        `of others (${n(dup.groups)} group${dup.groups === 1 ? '' : 's'}); selection method exact-dedup keeps one of each`,
    );
  lines.push(formatIssueTable(r.issues));
  return lines.join('\n');
}

export function formatIssueTable(issues: IssueCount[]): string {
  if (issues.length === 0) return '  no issues';
  const rows = issues.map((i) => [i.kind, i.severity === 'error' ? 'skipped' : 'kept', n(i.count)]);
  const header = ['issue', 'sample', 'count'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    '  ' + cells.map((cell, c) => (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatSummary(s: CatalogSummary): string {
  const lines = [`${n(s.samples)} samples in ${s.datasets.length} dataset(s)`];
  for (const d of s.datasets) {
    lines.push(
      `  ${p(d.name)} (${d.format}, ${d.parts} parts): ${n(d.samples)} samples, ${n(d.issues)} issues  ${p(d.spec)}`,
    );
  }
  lines.push('issues by kind:', formatIssueTable(s.issues));
  return lines.join('\n');
}
