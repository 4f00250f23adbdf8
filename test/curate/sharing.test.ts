/**
 * One workspace, two processes: DuckDB lets one process write the catalog at a time. A process that
 * finds it held waits and retries (Catalog.open), and gives up after its limit with a message naming
 * the holder; the panel's CurationView holds the catalog only while it works, so the real CLI runs
 * `select` and `export` while a view is open on the workspace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, WorkspaceBusyError } from '../../src/curate/catalog.js';
import { CurationView } from '../../src/curate/view.js';
import { tempDir } from '../helpers.js';
import { miniWorkspace } from '../support/miniWorkspace.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

let workspace: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  ({ workspace } = await miniWorkspace());
}, 120_000);

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

/** A node process running `code` (an ES module, TypeScript sources importable through tsx). */
function nodeProcess(code: string): { child: ChildProcess; lines: string[]; exit: Promise<number> } {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  child.stderr!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const exit = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  return { child, lines, exit };
}

/**
 * Another process that opens the catalog (waiting at most `lockWaitMs`), writes a review, says "held",
 * and keeps it for `ms`.
 */
function holder(ms: number, key: string, lockWaitMs = 10_000) {
  const catalogModule = path.join(ROOT, 'src/curate/catalog.ts');
  return nodeProcess(`
    import { Catalog } from ${JSON.stringify(catalogModule)};
    const catalog = await Catalog.open(${JSON.stringify(workspace)}, { lockWaitMs: ${lockWaitMs} });
    await catalog.connection.run("INSERT OR REPLACE INTO reviews VALUES ('${key}', 'reject', 'now')");
    console.log('held');
    await new Promise((r) => setTimeout(r, ${ms}));
    catalog.close();
    console.log('released');
  `);
}

async function untilLine(lines: string[], text: string, timeout = 60_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!lines.includes(text)) {
    if (Date.now() > deadline)
      throw new Error(`no "${text}" within ${timeout} ms; output: ${lines.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The real CLI (the `main` bin/curate.js runs, from the sources) in a process of its own. */
function curate(...args: string[]) {
  const mainModule = path.join(ROOT, 'src/curate/cli/main.ts');
  return nodeProcess(`
    import { main } from ${JSON.stringify(mainModule)};
    process.exitCode = await main(['node', 'curate', ...${JSON.stringify(args)}]);
  `);
}

describe('sharing a workspace between processes', () => {
  it('waits while another process holds the catalog, then opens it and sees what that process wrote', async () => {
    const other = holder(1500, 'held-by-other');
    await untilLine(other.lines, 'held');
    const start = Date.now();
    const catalog = await Catalog.open(workspace);
    const waited = Date.now() - start;
    try {
      expect(other.lines).toContain('released');
      expect(waited).toBeGreaterThan(500);
      const rows = await catalog.rows<{ key: string }>("SELECT key FROM reviews WHERE key = 'held-by-other'");
      expect(rows).toHaveLength(1);
      await catalog.connection.run("DELETE FROM reviews WHERE key = 'held-by-other'");
    } finally {
      catalog.close();
    }
    expect(await other.exit).toBe(0);
  }, 90_000);

  it('gives up after its limit with a message that names the process holding the catalog', async () => {
    const other = holder(60_000, 'still-held');
    await untilLine(other.lines, 'held');
    const start = Date.now();
    const err = await Catalog.open(workspace, { lockWaitMs: 1500 }).catch((e: unknown) => e);
    const waited = Date.now() - start;
    expect(err).toBeInstanceOf(WorkspaceBusyError);
    const message = (err as Error).message;
    expect(message).toContain(`the workspace is busy: node (PID ${other.child.pid}) holds`);
    expect(message).toContain(`${path.join(workspace, 'catalog.duckdb')}; retried for 1.5 s`);
    expect(waited).toBeGreaterThanOrEqual(1500);
    expect(waited).toBeLessThan(15_000);
  }, 90_000);

  describe('the CLI beside an open CurationView', () => {
    let view: CurationView;
    beforeAll(async () => {
      view = await CurationView.open(workspace, { mapPoints: 100 });
    });
    afterAll(async () => {
      await view.close();
    });

    it('runs select and export (exit 0) while the view is open and in use; the view then shows the new selection', async () => {
      const before = await view.page({ limit: 12 });
      expect(before.items).toHaveLength(12);
      const out = path.join(await tempDir({ forFile: true }), 'out');

      const select = curate(
        '-w',
        workspace,
        'select',
        '--method',
        'random',
        '--budget',
        '20',
        '--name',
        'from-cli',
      );
      // The view keeps working while the CLI runs: its requests wait for the CLI's catalog, and back.
      const during = await view.page({ offset: 12, limit: 12 });
      expect(during.items).toHaveLength(12);
      expect(await select.exit, select.lines.join('\n')).toBe(0);

      const exported = curate(
        '-w',
        workspace,
        'export',
        '--selection',
        'from-cli',
        '--format',
        'jsonl',
        '--out',
        out,
      );
      expect(await exported.exit, exported.lines.join('\n')).toBe(0);
      expect(existsSync(path.join(out, 'provenance.json'))).toBe(true);
      const manifest = readdirSync(out).find((f) => f.endsWith('.jsonl'))!;
      expect(readFileSync(path.join(out, manifest), 'utf8').trim().split('\n')).toHaveLength(20);

      await view.refresh();
      await view.useSelection('from-cli');
      const summary = await view.summary();
      expect(summary.selections).toContain('from-cli');
      expect([summary.selection, summary.method, summary.budget]).toEqual(['from-cli', 'random', 20]);
      expect((await view.page({ filter: 'selected' })).total).toBe(20);
    }, 180_000);

    it('lets go of the catalog once idle, so another process gets it without waiting', async () => {
      await view.summary();
      expect(view.holdsCatalog).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      expect(view.holdsCatalog).toBe(false);
      // Not a moment's wait allowed: this fails if the view still held the catalog.
      const other = holder(0, 'no-wait', 0);
      expect(await other.exit, other.lines.join('\n')).toBe(0);
      expect(other.lines).toContain('released');
      const reviews = await view.summary();
      expect(reviews.reviews.reject).toBeGreaterThanOrEqual(1);
    }, 90_000);
  });
});
