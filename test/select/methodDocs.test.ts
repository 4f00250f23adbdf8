/**
 * The user documentation of the selection methods (docs/methods/): every registered method has a page
 * (and an anchor, where a page documents several) that names every parameter of its schema; every
 * `docs/methods/…#anchor` cited by a user-visible string and every link between the pages resolves;
 * no user-visible string cites the developers' specifications (`craig.md §2`); `curate methods`
 * prints each method's page.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/embed/env.js';
import { METHODS_INDEX_DOC, methodDoc } from '../../src/select/methodDocs.js';
import { describeMethods, registry } from '../../src/select/registry.js';
import { captureCli } from '../support/cli.js';
import { headings, relativeLinks, section } from '../support/markdown.js';

const { curate } = captureCli();
const METHODS_DIR = path.join(PACKAGE_ROOT, 'docs', 'methods');

/** `docs/methods/x.md#a` → the file's absolute path and the anchor (undefined without one). */
function resolveDoc(reference: string, from = PACKAGE_ROOT): { file: string; anchor: string | undefined } {
  const [file, anchor] = reference.split('#') as [string, string | undefined];
  return { file: path.resolve(from, file), anchor };
}

/** The Markdown a reference points at: the whole file, or the section under its anchor (undefined if absent). */
function referencedText(reference: string, from = PACKAGE_ROOT): string | undefined {
  const { file, anchor } = resolveDoc(reference, from);
  if (!existsSync(file)) return undefined;
  const markdown = readFileSync(file, 'utf8');
  if (anchor === undefined) return markdown;
  if (!file.endsWith('.md')) return undefined;
  return section(markdown, anchor);
}

/** The registered method's page; a clear failure when src/select/methodDocs.ts has no entry for it. */
function docOf(name: string): string {
  const doc = methodDoc(name);
  if (doc === undefined) throw new Error(`method '${name}' has no page in src/select/methodDocs.ts`);
  return doc;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

/** TypeScript source without its comments (code comments may cite the developers' specifications). */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const USER_FACING_SOURCES = ['src', 'extension', 'media/src'].flatMap((d) =>
  sourceFiles(path.join(PACKAGE_ROOT, d)),
);

describe('method documentation', () => {
  it('every registered method has a page, an anchor where grouped, and names every parameter', () => {
    expect(registry.size).toBeGreaterThan(0);
    for (const method of describeMethods()) {
      const doc = docOf(method.name);
      expect(method.docs).toBe(doc);
      const text = referencedText(doc);
      expect(text, `${method.name}: ${doc} does not exist (file or anchor)`).toBeDefined();
      const params = Object.keys((method.params as { properties?: object }).properties ?? {});
      const missing = params.filter((p) => !text!.includes(`\`${p}\``));
      expect(missing, `${method.name}: parameters not documented in ${doc}`).toEqual([]);
    }
  });

  it('the index lists every registered method with a link to its page', () => {
    const index = readFileSync(path.join(PACKAGE_ROOT, METHODS_INDEX_DOC), 'utf8');
    for (const name of registry.keys()) {
      const doc = docOf(name);
      const relative = path.relative('docs/methods', doc);
      expect(index, `${METHODS_INDEX_DOC} lacks a row for ${name}`).toContain(`[\`${name}\`](${relative})`);
    }
  });

  it('every page documents a method the registry has, and every link between pages resolves', () => {
    const pages = readdirSync(METHODS_DIR).filter((f) => f.endsWith('.md'));
    const documented = new Set([...registry.keys()].map((n) => path.basename(resolveDoc(docOf(n)).file)));
    const shared = new Set(['README.md', 'common.md']);
    for (const page of pages) {
      expect(documented.has(page) || shared.has(page), `${page} documents no registered method`).toBe(true);
      const markdown = readFileSync(path.join(METHODS_DIR, page), 'utf8');
      for (const link of relativeLinks(markdown)) {
        const target = link.startsWith('#') ? `${page}${link}` : link;
        expect(referencedText(target, METHODS_DIR), `${page}: broken link ${link}`).toBeDefined();
      }
    }
    // Anchors are unique within a page, so a cited anchor means one place.
    for (const page of pages) {
      const anchors = headings(readFileSync(path.join(METHODS_DIR, page), 'utf8')).map((h) => h.anchor);
      expect(new Set(anchors).size).toBe(anchors.length);
    }
  });

  it('user-visible strings cite docs/methods pages that exist, never the developers’ specifications', () => {
    let citations = 0;
    for (const file of USER_FACING_SOURCES) {
      const code = withoutComments(readFileSync(file, 'utf8'));
      for (const m of code.matchAll(/docs\/methods\/[\w.-]+\.md(?:#[\w-]+)?/g)) {
        citations++;
        expect(referencedText(m[0]), `${path.relative(PACKAGE_ROOT, file)} cites ${m[0]}`).toBeDefined();
      }
      const spec = /\b[\w-]+\.md\s*(§|[ABCGNRSU]\d\b|step \d|pitfall)/.exec(code);
      expect(spec?.[0], `${path.relative(PACKAGE_ROOT, file)} cites a specification`).toBeUndefined();
    }
    expect(citations).toBeGreaterThan(0);
  });

  it('the docs ship with the package', () => {
    const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      files?: string[];
    };
    // Without a "files" list npm packs everything git does not ignore; with one, docs/ must be on it.
    if (pkg.files) expect(pkg.files.some((f) => /^\/?docs\/?$/.test(f))).toBe(true);
    const ignored = readFileSync(path.join(PACKAGE_ROOT, '.gitignore'), 'utf8').split('\n');
    expect(ignored.some((line) => /^\/?docs\b/.test(line.trim()))).toBe(false);
    expect(existsSync(path.join(PACKAGE_ROOT, '.npmignore'))).toBe(false);
  });
});

describe('curate methods', () => {
  it('prints the page of every method, as a path inside the installed package', async () => {
    const { code, out } = await curate('methods');
    expect(code).toBe(0);
    expect(out).toContain(path.join(PACKAGE_ROOT, METHODS_INDEX_DOC));
    for (const name of registry.keys()) {
      const doc = path.join(PACKAGE_ROOT, docOf(name));
      expect(out).toContain(`\n${name} — `);
      // The docs line follows the method's heading line.
      const block = out.slice(out.indexOf(`\n${name} — `) + 1);
      expect(block.split('\n')[1]).toBe(`  docs: ${doc}`);
      expect(existsSync(doc.split('#')[0]!)).toBe(true);
    }
  });

  it('--json gives each method its absolute docs path', async () => {
    const { code, out } = await curate('methods', '--json');
    expect(code).toBe(0);
    const methods = JSON.parse(out) as { name: string; docs?: string }[];
    expect(methods.map((m) => m.name)).toEqual([...registry.keys()]);
    for (const m of methods) expect(m.docs).toBe(path.join(PACKAGE_ROOT, docOf(m.name)));
  });
});
