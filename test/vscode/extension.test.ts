/// <reference lib="dom" />
/**
 * The packaged extension in a real VS Code: code-server (installed once into a cached tool folder by
 * scripts/vscode-tools.sh, with the Debian packages it needs) driven by Debian's chromium through
 * playwright-core. Installs the built .vsix, then, from the palette: creates a workspace on a fixture
 * dataset and checks the panel's grid; embeds and selects with a method; exports and checks the files.
 * Run by `npm run test:ui` from .ci/run. Screenshots go to test-output/vscode/.
 *
 * Robustness, learned the hard way on a loaded 2-core machine:
 * - The palette opened right after the workbench appears may not list the extension's commands yet,
 *   and an open list does not refresh when they arrive. So the test first waits for the extension
 *   host to report that it has registered every extension (its log), and `runCommand` closes and
 *   re-opens the palette until the command's row is there (bounded by `WAIT.commandListed`).
 * - Each test opens its own curation workspace (the later ones prepared on disk by the same API the
 *   extension calls), so one failure does not cascade into the next test.
 * - Every failure saves a screenshot, the code-server output and the extension host logs under
 *   test-output/vscode/, and its message says where they are.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { chromium, type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINI, tempDir } from '../helpers.js';

/**
 * Every wait of this file, in one place, sized for a loaded 2-core machine (CI runs this right after
 * lint and the unit tests; the issue that introduced these saw 3 s between the workbench appearing and
 * the commands being listed on a quiet machine, much more under load).
 */
const WAIT = {
  /** code-server answering /healthz. */
  server: 120_000,
  /** The workbench painted in Chromium. */
  workbench: 120_000,
  /** The extension host reporting that it has registered every installed extension. */
  extensionHost: 180_000,
  /** The palette listing a command of ours (re-opened every `paletteLook` until then). */
  commandListed: 120_000,
  paletteLook: 2_500,
  /** The palette showing after F1 (pressed again after this). */
  paletteOpen: 5_000,
  /** A quick input, a panel frame, a grid cell, a notification of a short step. */
  ui: 90_000,
  /** Reading a dataset, selecting, exporting (240 samples). */
  step: 180_000,
  /** Fitting the offline encoder and embedding 240 samples. */
  embed: 480_000,
} as const;
/** A test's own limit; vitest's timeout is a minute longer so our deadline fails first, with artefacts. */
const TEST_LIMIT = {
  create: WAIT.commandListed + 3 * WAIT.ui + WAIT.step,
  embedSelect: 2 * WAIT.commandListed + 5 * WAIT.ui + WAIT.embed + WAIT.step,
  export: WAIT.commandListed + 4 * WAIT.ui + 2 * WAIT.step,
  shared: 2 * WAIT.commandListed + 6 * WAIT.ui + 3 * WAIT.step,
};

const ROOT = path.resolve(import.meta.dirname, '../..');
const SHOTS = path.join(ROOT, 'test-output', 'vscode');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Curation workspaces inside the VS Code folder: one per test, so a miss does not cascade. */
const WS = {
  created: '.curate',
  /** Prepared with the dataset read (not embedded). */
  read: 'ws-read',
  /** Prepared read, embedded (offline encoder) and with one clip-score 25% selection. */
  selected: 'ws-selected',
  /** Prepared as `selected`; the CLI works on it while the panel shows it. */
  shared: 'ws-shared',
};

let server: ChildProcess | undefined;
let context: BrowserContext | undefined;
let page: Page;
let folder: string;
let userData: string;
const serverOutput: string[] = [];
const browserConsole: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every 500 ms until it returns true; throw `what` after `timeout` ms. */
async function until(what: string, timeout: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    await sleep(500);
  }
  throw new Error(`${what}: not within ${timeout / 1000} s`);
}

/** The extension host's log files (code-server writes one folder per window session). */
function extensionHostLogs(): string[] {
  const logs = path.join(userData, 'logs');
  if (!existsSync(logs)) return [];
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'remoteexthost.log') found.push(p);
    }
  };
  walk(logs);
  return found;
}

/**
 * Deterministic readiness: the extension host logs "Eager extensions activated" once it has
 * registered every installed extension (ours included; it activates later, on its first command).
 */
async function waitForExtensionHost(): Promise<void> {
  await until('the extension host reporting its extensions registered', WAIT.extensionHost, () =>
    extensionHostLogs().some((f) => readFileSync(f, 'utf8').includes('Eager extensions activated')),
  );
}

/** Screenshot, code-server output and extension host logs for a failure; returns where they are. */
async function saveArtefacts(name: string): Promise<string> {
  const slug = name
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
  const dir = path.join(SHOTS, `FAILED-${slug}`);
  mkdirSync(dir, { recursive: true });
  const saved: string[] = [];
  try {
    if (page) {
      await page.screenshot({ path: path.join(dir, 'screenshot.png'), timeout: 15_000 });
      saved.push('screenshot.png');
    }
  } catch (err) {
    saved.push(`(no screenshot: ${(err as Error).message.split('\n')[0]})`);
  }
  writeFileSync(path.join(dir, 'code-server.log'), serverOutput.join(''));
  writeFileSync(path.join(dir, 'browser-console.log'), browserConsole.join('\n'));
  saved.push('code-server.log', 'browser-console.log');
  if (userData && existsSync(path.join(userData, 'logs'))) {
    cpSync(path.join(userData, 'logs'), path.join(dir, 'logs'), { recursive: true });
    saved.push('logs/ (extension host)');
  }
  return `artefacts in ${path.relative(ROOT, dir)}/: ${saved.join(', ')}`;
}

/** Run `body` with a deadline below vitest's; any failure saves artefacts and says where they are. */
async function withArtefacts(name: string, limit: number, body: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${limit / 1000} s`)), limit);
  });
  try {
    await Promise.race([body(), deadline]);
  } catch (err) {
    const where = await saveArtefacts(name);
    throw new Error(`${(err as Error).message}\n${where}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function uiTest(name: string, limit: number, body: () => Promise<void>): void {
  it(name, () => withArtefacts(name, limit, body), limit + 60_000);
}

/**
 * The fixture dataset read into `ws` (and, with `select`, embedded and one selection made), by the real
 * CLI in a child process: done in this process, the encoder fit blocked vitest's worker long enough for
 * its RPC to time out ("Timeout calling onTaskUpdate") on a loaded machine.
 */
async function prepareWorkspace(ws: string, select: boolean): Promise<void> {
  const dir = path.join(folder, ws);
  const steps = [['init', path.join(folder, 'data/mini-{000..002}.tar')]];
  if (select) steps.push(['embed'], ['select', '--method', 'clip-score', '--budget', '25%']);
  for (const step of steps) {
    const run = await cli('-w', dir, ...step);
    if (run.code !== 0)
      throw new Error(`curate ${step.join(' ')} in ${dir} exited ${run.code}:\n${run.output}`);
  }
}

/** Run a program without blocking this worker (a synchronous spawn starves vitest's RPC); stdout back. */
async function runAsync(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  if (code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${code}:\n${stderr}${stdout}`);
  return stdout;
}

beforeAll(async () => {
  const codeServer = (await runAsync('bash', [path.join(ROOT, 'scripts/vscode-tools.sh')])).trim();
  await runAsync(process.execPath, [path.join(ROOT, 'scripts/package-vsix.mjs')], { cwd: ROOT });
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
  userData = path.join(home, 'user-data');
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
  await runAsync(
    codeServer,
    ['--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', vsix],
    { env },
  );

  folder = path.join(home, 'project');
  mkdirSync(path.join(folder, 'data'), { recursive: true });
  for (const f of readdirSync(path.join(MINI, 'wds')))
    cpSync(path.join(MINI, 'wds', f), path.join(folder, 'data', f));
  await prepareWorkspace(WS.read, false);
  await prepareWorkspace(WS.selected, true);
  // A workspace records no path of its own: a copy is a second workspace with the same selection.
  cpSync(path.join(folder, WS.selected), path.join(folder, WS.shared), { recursive: true });

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
  server.stdout!.on('data', (d: Buffer) => serverOutput.push(d.toString()));
  server.stderr!.on('data', (d: Buffer) => serverOutput.push(d.toString()));

  await withArtefacts(
    'start-up',
    WAIT.server + WAIT.workbench + WAIT.extensionHost + WAIT.commandListed,
    async () => {
      await until('code-server answering /healthz', WAIT.server, async () => {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      });
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
      page.on('console', (m) => browserConsole.push(`${new Date().toISOString()} ${m.type()} ${m.text()}`));
      await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`);
      await page.waitForSelector('.monaco-workbench', { timeout: WAIT.workbench });
      await page.waitForSelector('.statusbar', { timeout: WAIT.workbench });
      await waitForExtensionHost();
      // The workbench's command list is fed from the same registration; wait until it shows ours.
      await openPaletteOn('Curate: Open Curation Panel');
      await page.keyboard.press('Escape');
    },
  );
}, 1_200_000);

afterAll(async () => {
  await context?.close();
  server?.kill('SIGTERM');
});

/**
 * Open the palette on `title` and return once its row is listed. An open palette does not refresh
 * when commands are registered, so it is closed and opened again until the row appears.
 */
async function openPaletteOn(title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  const deadline = Date.now() + WAIT.commandListed;
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('Escape');
    // F1 lands wherever the focus is; in the panel's webview the key is forwarded to the workbench,
    // unless the webview is reloading at that moment (seen in CI: the palette never opened). So the
    // key is pressed again until the palette shows.
    // From the second try on, take the focus out of any webview first: the workbench's own key
    // listener then gets F1 directly.
    if (attempt > 1) await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ state: 'visible', timeout: WAIT.paletteOpen });
    } catch {
      if (Date.now() > deadline)
        throw new Error(
          `the palette did not open on F1 in ${attempt} tries over ${WAIT.commandListed / 1000} s`,
        );
      continue;
    }
    try {
      // The palette can close again between showing and typing (focus taken by a webview that is
      // still loading; seen in CI: fill then waited 30 s for an input that never came back).
      await input.fill(`>${title}`, { timeout: WAIT.paletteOpen });
    } catch {
      if (Date.now() > deadline)
        throw new Error(`the palette closed before "${title}" could be typed, ${attempt} tries`);
      continue;
    }
    try {
      await row.waitFor({ timeout: WAIT.paletteLook });
      if (attempt > 1) console.info(`palette: "${title}" listed on try ${attempt}`);
      return;
    } catch {
      if (Date.now() > deadline)
        throw new Error(
          `the palette did not list "${title}" in ${attempt} tries over ${WAIT.commandListed / 1000} s`,
        );
    }
  }
}

async function runCommand(title: string): Promise<void> {
  await openPaletteOn(title);
  await page.locator('.quick-input-widget input').press('Enter');
}

/** Answer the quick input now showing (input box or quick pick) with `text`, then Enter. */
async function answer(text: string | null, expectTitle: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  await widget.locator('.quick-input-title', { hasText: expectTitle }).waitFor({ timeout: WAIT.ui });
  const input = widget.locator('input');
  await input.waitFor({ state: 'visible', timeout: WAIT.ui });
  if (text !== null) await input.fill(text);
  await page.waitForTimeout(300);
  await input.press('Enter');
}

async function notification(text: string | RegExp, timeout: number = WAIT.step): Promise<string> {
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await toast.waitFor({ timeout });
  return toast.innerText();
}

function panelFrame(): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

async function panelStatusContains(text: string): Promise<void> {
  await expect
    .poll(() => panelFrame().locator('.status').innerText({ timeout: WAIT.ui }), { timeout: WAIT.ui })
    .toContain(text);
}

/** Switch the extension to curation workspace `ws` (created and read when new). */
async function openWorkspace(ws: string): Promise<void> {
  await runCommand('Curate: Open or Create Curation Workspace…');
  await answer(ws, 'Curation workspace folder');
}

/**
 * Wait until the panel shows workspace `ws` (its tab title) with `status`: the open command has
 * finished, so the next command's quick input is not closed by the panel taking the focus.
 */
async function panelShows(ws: string, status: string): Promise<void> {
  await page
    .locator('.tab', { hasText: `Curation: ${ws}` })
    .first()
    .waitFor({ timeout: WAIT.ui });
  await panelStatusContains(status);
}

/**
 * The real CLI in a process of its own, from a terminal beside the panel: the `main` that
 * bin/curate.js runs, loaded from the sources (through tsx) so the test never runs a stale build.
 */
async function cli(...args: string[]): Promise<{ code: number; output: string; seconds: number }> {
  const started = Date.now();
  const mainModule = path.join(ROOT, 'src/curate/cli/main.ts');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { main } from ${JSON.stringify(mainModule)};
       process.exitCode = await main(['node', 'curate', ...${JSON.stringify(args)}]);`,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
  return { code, output, seconds: (Date.now() - started) / 1000 };
}

describe('the extension in a real VS Code (code-server)', () => {
  uiTest(
    'creates a workspace from the palette and shows the dataset in the panel grid',
    TEST_LIMIT.create,
    async () => {
      await openWorkspace(WS.created);
      await answer('data/mini-{000..002}.tar', 'Add a dataset');
      await notification('Read 240 samples');
      await panelFrame()
        .locator('.cell img.thumb[src^="data:image/webp"]')
        .first()
        .waitFor({ timeout: WAIT.ui });
      await panelStatusContains('240 of 240 samples shown');
      await page.screenshot({ path: path.join(SHOTS, 'panel-catalog.png') });
    },
  );

  uiTest(
    'embeds with progress, selects with a method from the quick picks, and the panel shows the picks',
    TEST_LIMIT.embedSelect,
    async () => {
      await openWorkspace(WS.read);
      await panelShows(WS.read, '240 of 240 samples shown · no selection');
      await runCommand('Curate: Embed Images and Captions');
      await notification(/Embedded 2\d\d samples/, WAIT.embed);
      await runCommand('Curate: Select a Subset…');
      await answer('clip-score', 'Selection method');
      await answer('25%', 'Budget');
      await answer(null, 'clip-score: parameters');
      const done = await notification('clip-score picked');
      expect(done).toContain('clip-score picked 60 samples');
      await panelStatusContains('selection clip-score-25pct (clip-score, 60 picks)');
      const frame = panelFrame();
      await frame.locator('.cell.picked').first().waitFor({ timeout: WAIT.ui });
      // The panel can reload once more after the selection is announced, and a reload clears the
      // focused cell (seen in two CI runs: once before the click, once between click and Enter):
      // click a cell and press Enter until its neighbours are listed.
      await expect
        .poll(
          async () => {
            await frame.locator('.cell').first().click();
            await frame.locator('.grid').press('Enter');
            return frame.locator('.results .mini').count();
          },
          { timeout: WAIT.ui, interval: 3000 },
        )
        .toBeGreaterThan(0);
      await page.screenshot({ path: path.join(SHOTS, 'panel-selection.png') });
    },
  );

  uiTest('exports the selection and the files are on disk', TEST_LIMIT.export, async () => {
    await openWorkspace(WS.selected);
    await panelShows(WS.selected, 'selection clip-score-25pct (clip-score, 60 picks)');
    await runCommand('Curate: Export Selection…');
    await answer('jsonl', 'Export format');
    await answer(null, 'Export to folder');
    await notification('Exported 60 samples');
    const out = path.join(folder, WS.selected, 'exports', 'clip-score-25pct-jsonl');
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

    // Chaining from the palette: random draws within the clip-score picks, never outside them.
    await runCommand('Curate: Select a Subset…');
    await answer('random', 'Selection method');
    await answer('clip-score-25pct', 'Select from');
    await answer('50%', 'Budget');
    await answer(null, 'random: parameters');
    expect(await notification('random picked')).toContain('random picked 30 samples');
    const selections = path.join(folder, WS.selected, 'selections');
    const keysOf = (name: string) =>
      (JSON.parse(readFileSync(path.join(selections, name, 'selection.json'), 'utf8')) as { keys: string[] })
        .keys;
    const within = new Set(keysOf('clip-score-25pct'));
    const chained = readdirSync(selections).find((n) => n.startsWith('random'))!;
    const picks = keysOf(chained);
    expect(picks).toHaveLength(30);
    expect(picks.filter((k) => !within.has(k))).toEqual([]);
  });

  uiTest(
    'the CLI selects and exports in the workspace the panel shows; the panel then shows the new selection',
    TEST_LIMIT.shared,
    async () => {
      await openWorkspace(WS.shared);
      await panelShows(WS.shared, 'selection clip-score-25pct (clip-score, 60 picks)');
      const frame = panelFrame();
      await frame.locator('.cell img.thumb[src^="data:image/webp"]').first().waitFor({ timeout: WAIT.ui });
      // The map (UMAP, in a worker thread) computes while the CLI works and the grid keeps its thumbnails.
      await frame.locator('vscode-tab-header', { hasText: 'Map' }).click();

      const ws = path.join(folder, WS.shared);
      const select = await cli(
        '-w',
        ws,
        'select',
        '--method',
        'random',
        '--budget',
        '30',
        '--name',
        'from-cli',
      );
      expect(select.code, select.output).toBe(0);
      console.info(`curate select beside the open panel: exit 0 in ${select.seconds.toFixed(1)} s`);
      const out = path.join(ws, 'exports', 'from-cli');
      const exported = await cli(
        '-w',
        ws,
        'export',
        '--selection',
        'from-cli',
        '--format',
        'jsonl',
        '--out',
        out,
      );
      expect(exported.code, exported.output).toBe(0);
      console.info(`curate export beside the open panel: exit 0 in ${exported.seconds.toFixed(1)} s`);
      const manifest = readdirSync(out).find((f) => f.endsWith('.jsonl'))!;
      expect(readFileSync(path.join(out, manifest), 'utf8').trim().split('\n')).toHaveLength(30);
      expect(existsSync(path.join(out, 'provenance.json'))).toBe(true);

      // The panel noticed the new selection (file watcher) and shows it, thumbnails and all.
      await panelStatusContains('selection from-cli (random, 30 picks)');
      await frame
        .locator('.cell.picked img.thumb[src^="data:image/webp"]:visible')
        .first()
        .waitFor({ timeout: WAIT.ui });
      await frame.locator('.legend-item', { hasText: 'not picked' }).first().waitFor({ timeout: WAIT.step });
      await page.screenshot({ path: path.join(SHOTS, 'panel-after-cli.png') });

      // Export offers the selection on screen first, with its method, budget and date.
      await runCommand('Curate: Export Selection…');
      const widget = page.locator('.quick-input-widget');
      await widget
        .locator('.quick-input-title', { hasText: 'Selection to export' })
        .waitFor({ timeout: WAIT.ui });
      const first = widget.locator('.quick-input-list .monaco-list-row').first();
      await expect.poll(() => first.innerText(), { timeout: WAIT.ui }).toContain('from-cli');
      expect(await first.innerText()).toMatch(
        /random · 30 of 240 \(30\)[\s\S]*shown in the panel[\s\S]*made /,
      );
      await page.keyboard.press('Escape');
    },
  );
});
