/**
 * Loads the curation panel's real page (dist/media, built by esbuild.mjs, with the CSP of
 * extension/shell.ts) in headless Chromium and plays the extension host's part: messages from the page
 * go through extension/dispatch.ts to a real CurationView, replies come back as window messages, the
 * way VS Code's webview bridge delivers them. Only the transport differs from the extension.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { answer, panelSummary } from '../../extension/dispatch.js';
import type { HostCommand, Request, ToHost, ToPage } from '../../extension/protocol.js';
import { panelDocument } from '../../extension/shell.js';
import type { CurationView } from '../../src/curate/api.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ORIGIN = 'http://clipcurate.test';
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The few browser globals the injected functions use (the test tsconfig has no DOM lib). */
interface BrowserGlobals {
  postMessage(message: unknown, origin: string): void;
  document: {
    addEventListener(
      type: string,
      listener: (e: { violatedDirective: string; blockedURI: string }) => void,
    ): void;
  };
}

export function buildPanel(): void {
  execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'inherit' });
}

export interface PanelPage {
  page: Page;
  /** Host commands the page asked for (buttons that open palette flows). */
  commands: HostCommand[];
  /** Every request the page sent, in order (what a click asked the host for). */
  requests: Request[];
  /** Console errors and CSP violations seen so far. */
  errors: string[];
  post(message: ToPage): Promise<void>;
  close(): Promise<void>;
}

export async function openPanelPage(
  view: CurationView,
  viewport = { width: 1400, height: 900 },
): Promise<PanelPage> {
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport });
  const commands: HostCommand[] = [];
  const requests: Request[] = [];
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  const post = async (message: ToPage) => {
    await page.evaluate(
      (m) => (globalThis as unknown as BrowserGlobals).postMessage(m, '*'),
      message as unknown as Record<string, unknown>,
    );
  };
  await page.exposeBinding('__toHost', async (_source, message: ToHost) => {
    switch (message.type) {
      case 'ready':
        await post({ type: 'init', summary: await panelSummary(view) });
        return;
      case 'command':
        commands.push(message.command);
        return;
      case 'request':
        requests.push(message.request);
        try {
          const body = await answer(view, message.request);
          await post({ type: 'reply', requestId: message.requestId, ok: true, body });
        } catch (err) {
          await post({
            type: 'reply',
            requestId: message.requestId,
            ok: false,
            error: (err as Error).message,
          });
        }
    }
  });
  // A string, not a function: tsx/esbuild may wrap functions with helpers (`__name`) the page lacks;
  // the shim defines `__name` too, for page.evaluate callbacks compiled the same way.
  await page.addInitScript(`
    window.__name = (fn) => fn;
    let state;
    window.acquireVsCodeApi = () => ({
      postMessage: (m) => window.__toHost(m),
      getState: () => state,
      setState: (s) => { state = s; },
    });
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));
  `);
  await page.route(`${ORIGIN}/**`, async (route) => {
    const name = new URL(route.request().url()).pathname.slice(1);
    if (name === 'index.html') {
      const html = panelDocument({
        cspSource: ORIGIN,
        scriptUri: `${ORIGIN}/panel.js`,
        styleUri: `${ORIGIN}/panel.css`,
      });
      return route.fulfill({ contentType: 'text/html', body: html });
    }
    const file = path.join(ROOT, 'dist', 'media', path.basename(name));
    const type = name.endsWith('.css') ? 'text/css' : 'text/javascript';
    return route.fulfill({ contentType: type, body: await readFile(file) });
  });
  await page.goto(`${ORIGIN}/index.html`);
  return { page, commands, requests, errors, post, close: () => browser.close() };
}
