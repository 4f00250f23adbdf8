/// <reference lib="dom" />
/**
 * The packaged extension in a real VS Code: code-server (installed once into a cached tool folder by
 * scripts/vscode-tools.sh, with the Debian packages it needs) driven by Debian's chromium through
 * playwright-core. Installs the built .vsix, opens a workspace on a fixture dataset from the palette,
 * checks the panel's grid, embeds, selects with a method, exports, and checks the exported files.
 * Run by `npm run test:ui` from .ci/run. Screenshots go to test-output/vscode/.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { chromium, type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINI, tempDir } from '../helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SHOTS = path.join(ROOT, 'test-output', 'vscode');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let server: ChildProcess | undefined;
let context: BrowserContext;
let page: Page;
let folder: string;
const log: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitForHealth(port: number): Promise<void> {
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`code-server did not start:\n${log.join('')}`);
}

beforeAll(async () => {
  const codeServer = execFileSync('bash', [path.join(ROOT, 'scripts/vscode-tools.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/package-vsix.mjs')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const vsix = path.join(ROOT, 'build', `clipcurate-${process.platform}-${process.arch}-${pkg.version}.vsix`);
  mkdirSync(SHOTS, { recursive: true });

  const home = await tempDir({ forFile: true });
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_DATA_HOME: path.join(home, 'data'),
    XDG_CACHE_HOME: path.join(home, 'cache'),
  };
  const userData = path.join(home, 'user-data');
  const extensions = path.join(home, 'extensions');
  mkdirSync(path.join(userData, 'User'), { recursive: true });
  writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify({
      'workbench.startupEditor': 'none',
      'security.workspace.trust.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'update.mode': 'none',
      'extensions.autoCheckUpdates': false,
      'workbench.colorTheme': 'Default Dark Modern',
    }),
  );
  execFileSync(
    codeServer,
    ['--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', vsix],
    { env, stdio: 'inherit' },
  );

  folder = path.join(home, 'project');
  mkdirSync(path.join(folder, 'data'), { recursive: true });
  for (const f of readdirSync(path.join(MINI, 'wds')))
    cpSync(path.join(MINI, 'wds', f), path.join(folder, 'data', f));

  const port = await freePort();
  server = spawn(
    codeServer,
    [
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir',
      userData,
      '--extensions-dir',
      extensions,
      folder,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  server.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  await waitForHealth(port);

  context = await chromium.launchPersistentContext(path.join(home, 'chromium'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-crash-reporter',
      '--disable-dev-shm-usage',
    ],
    env,
  });
  page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  await page.waitForSelector('.statusbar', { timeout: 60_000 });
}, 900_000);

afterAll(async () => {
  await context?.close();
  server?.kill('SIGTERM');
});

async function runCommand(title: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor();
  await input.press('Enter');
}

/** Answer the quick input now showing (input box or quick pick) with `text`, then Enter. */
async function answer(text: string | null, expectTitle?: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  if (expectTitle) await widget.locator('.quick-input-title', { hasText: expectTitle }).waitFor();
  const input = widget.locator('input');
  await input.waitFor({ state: 'visible' });
  if (text !== null) await input.fill(text);
  await page.waitForTimeout(200);
  await input.press('Enter');
}

async function notification(text: string | RegExp, timeout = 120_000): Promise<string> {
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await toast.waitFor({ timeout });
  return toast.innerText();
}

function panelFrame(): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

describe('the extension in a real VS Code (code-server)', () => {
  it('creates a workspace from the palette and shows the dataset in the panel grid', async () => {
    await runCommand('Curate: Open or Create Curation Workspace…');
    await answer('.curate', 'Curation workspace folder');
    await answer('data/mini-{000..002}.tar', 'Add a dataset');
    await notification('Read 240 samples');
    const frame = panelFrame();
    await frame.locator('.cell img.thumb[src^="data:image/webp"]').first().waitFor({ timeout: 60_000 });
    await expect.poll(() => frame.locator('.status').innerText()).toContain('240 of 240 samples shown');
    await page.screenshot({ path: path.join(SHOTS, 'panel-catalog.png') });
  });

  it('embeds with progress, selects with a method from the quick picks, and the panel shows the picks', async () => {
    await runCommand('Curate: Embed Images and Captions');
    await notification(/Embedded 2\d\d samples/, 300_000);
    await runCommand('Curate: Select a Subset…');
    await answer('clip-score', 'Selection method');
    await answer('25%', 'Budget');
    await answer(null, 'clip-score: parameters');
    const done = await notification('clip-score picked');
    expect(done).toContain('clip-score picked 60 samples');
    const frame = panelFrame();
    await expect
      .poll(() => frame.locator('.status').innerText(), { timeout: 30_000 })
      .toContain('selection clip-score-25pct (clip-score, 60 picks)');
    await frame.locator('.cell.picked').first().waitFor();
    await frame.locator('.cell').first().click();
    await frame.locator('.grid').press('Enter');
    await frame.locator('.results .mini').first().waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(SHOTS, 'panel-selection.png') });
  });

  it('exports the selection and the files are on disk', async () => {
    await runCommand('Curate: Export Selection…');
    await answer('jsonl', 'Export format');
    await answer(null, 'Export to folder');
    await notification('Exported 60 samples');
    const out = path.join(folder, '.curate', 'exports', 'clip-score-25pct-jsonl');
    const files = readdirSync(out);
    expect(files).toContain('provenance.json');
    const manifest = files.find((f) => f.endsWith('.jsonl'))!;
    const lines = readFileSync(path.join(out, manifest), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(60);
    const provenance = JSON.parse(readFileSync(path.join(out, 'provenance.json'), 'utf8')) as {
      selection: { method: string };
    };
    expect(JSON.stringify(provenance)).toContain('clip-score');
    await page.screenshot({ path: path.join(SHOTS, 'exported.png') });
  });
});
