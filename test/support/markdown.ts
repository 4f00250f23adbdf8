/**
 * Just enough Markdown for checking the user docs: GitHub's heading anchors (the `#anchor` of a link),
 * the section under an anchor, and the relative links of a page.
 */

export interface Heading {
  level: number;
  text: string;
  /** GitHub's anchor id, with -1, -2… for repeated headings as GitHub numbers them. */
  anchor: string;
  /** Line index of the heading. */
  line: number;
}

/** GitHub's slug: lower case, punctuation dropped (letters, digits, `-`, `_` and spaces kept), spaces → `-`. */
export function githubSlug(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** ATX headings outside fenced code blocks. */
export function headings(markdown: string): Heading[] {
  const out: Heading[] = [];
  const seen = new Map<string, number>();
  let fenced = false;
  markdown.split('\n').forEach((line, index) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) return;
    const m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) return;
    const base = githubSlug(m[2]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.push({ level: m[1]!.length, text: m[2]!, anchor: count ? `${base}-${count}` : base, line: index });
  });
  return out;
}

/** The text from the heading with this anchor up to the next heading of the same or a higher level. */
export function section(markdown: string, anchor: string): string | undefined {
  const all = headings(markdown);
  const at = all.findIndex((h) => h.anchor === anchor);
  if (at < 0) return undefined;
  const start = all[at]!;
  const end = all.slice(at + 1).find((h) => h.level <= start.level);
  return markdown
    .split('\n')
    .slice(start.line, end ? end.line : undefined)
    .join('\n');
}

/** Targets of inline links `[text](target)` that are neither absolute URLs nor mail links. */
export function relativeLinks(markdown: string): string[] {
  const targets: string[] = [];
  for (const m of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!;
    if (!/^[a-z]+:/i.test(target)) targets.push(target);
  }
  return targets;
}
