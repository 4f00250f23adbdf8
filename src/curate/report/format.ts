/** Text formatting and escaping shared by the report's HTML and plots: locale-independent on purpose. */
import type { MetricInfo } from './types.js';

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escape text for HTML element content and (double- or single-quoted) attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 12345 → "12,345". */
export function formatCount(n: number): string {
  return COUNT.format(n);
}

/** A fraction in 0–1 as a percentage with three significant digits: 0.1 → "10%", 0.005 → "0.5%". */
export function formatFraction(f: number): string {
  if (!Number.isFinite(f)) return '—';
  return `${Number((f * 100).toPrecision(3))}%`;
}

/** Seconds with precision that suits the size: 0.0421 → "0.042", 3.21 → "3.21", 123.4 → "123". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '—';
  const a = Math.abs(s);
  return s.toFixed(a < 1 ? 3 : a < 10 ? 2 : a < 100 ? 1 : 0);
}

/** A metric value as the table shows it; null, undefined and non-finite values → "—". */
export function formatMetric(value: number | null | undefined, info: MetricInfo = {}): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (info.format === 'percent') return `${(value * 100).toFixed(info.digits ?? 1)}%`;
  return value.toFixed(info.digits ?? 3);
}

/** "2024-05-01 12:34:56 UTC" from a Date or an ISO string (the string itself when it does not parse). */
export function formatDate(when: Date | string): string {
  const d = typeof when === 'string' ? new Date(when) : when;
  if (Number.isNaN(d.getTime())) return String(when);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A file-name-safe slug: "CLIP score@10%" → "clip-score-10". */
export function slug(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return s || 'plot';
}

/** Shorten text to at most `max` characters, ending in "…" when cut. */
export function truncate(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…';
}
