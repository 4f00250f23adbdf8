/**
 * The curation panel's whole life in one class: one panel at a time (`createOrShow` reveals it),
 * `revive` after a reload, messages answered through `dispatch.ts`, everything disposed together.
 */
import * as vscode from 'vscode';
import { answer, panelSummary } from './dispatch.js';
import { Disposable } from './dispose.js';
import { mediaRoot, panelHtml } from './html.js';
import type { HostCommand, ToHost, ToPage } from './protocol.js';
import type { Session } from './session.js';

export const PANEL_VIEW_TYPE = 'clipcurate.panel';

const HOST_COMMANDS: Record<HostCommand, string> = {
  select: 'clipcurate.select',
  compare: 'clipcurate.compare',
  export: 'clipcurate.export',
  report: 'clipcurate.openReport',
  diff: 'clipcurate.diff',
};

export class CuratePanel extends Disposable {
  static current: CuratePanel | undefined;
  /** Whether the page said `ready`; messages for a page still loading wait in `queued`. */
  private ready = false;
  private queued: ToPage[] = [];

  static createOrShow(extensionUri: vscode.Uri, session: Session): CuratePanel {
    if (CuratePanel.current) {
      CuratePanel.current.panel.reveal();
      return CuratePanel.current;
    }
    const panel = vscode.window.createWebviewPanel(
      PANEL_VIEW_TYPE,
      'Curation',
      vscode.ViewColumn.Active,
      webviewOptions(extensionUri),
    );
    CuratePanel.current = new CuratePanel(panel, extensionUri, session);
    return CuratePanel.current;
  }

  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, session: Session): void {
    panel.webview.options = webviewOptions(extensionUri);
    CuratePanel.current = new CuratePanel(panel, extensionUri, session);
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private readonly session: Session,
  ) {
    super();
    this.register(panel.onDidDispose(() => this.dispose()));
    this.register(panel.webview.onDidReceiveMessage((m: ToHost) => this.receive(m)));
    this.register(session.onDidChange(() => void this.sendSummary('changed')));
    panel.webview.html = panelHtml(panel.webview, extensionUri);
    panel.title = 'Curation';
  }

  post(message: ToPage): void {
    void this.panel.webview.postMessage(message);
  }

  /**
   * Post once the page is ready (after its `init`): a panel just created by a palette command (search,
   * show a compare run) would otherwise lose the message.
   */
  postWhenReady(message: ToPage): void {
    if (this.ready) this.post(message);
    else this.queued.push(message);
  }

  /** Show what selection `a` kept that `b` did not, and the other way round. */
  showDiff(a: string, b: string): void {
    this.panel.reveal();
    this.postWhenReady({ type: 'showDiff', a, b });
  }

  /** Show a saved compare run's table in the page. */
  showCompare(run: string): void {
    this.panel.reveal();
    this.postWhenReady({ type: 'showCompare', run });
  }

  override dispose(): void {
    if (CuratePanel.current === this) CuratePanel.current = undefined;
    super.dispose();
    this.panel.dispose();
  }

  private async receive(m: ToHost): Promise<void> {
    switch (m.type) {
      case 'ready': {
        await this.sendSummary('init');
        this.ready = true;
        const queued = this.queued;
        this.queued = [];
        for (const message of queued) this.post(message);
        return;
      }
      case 'command':
        await vscode.commands.executeCommand(HOST_COMMANDS[m.command]);
        return;
      case 'request':
        try {
          const body = await answer(await this.session.open(), m.request);
          this.post({ type: 'reply', requestId: m.requestId, ok: true, body });
        } catch (err) {
          this.post({ type: 'reply', requestId: m.requestId, ok: false, error: (err as Error).message });
        }
    }
  }

  private async sendSummary(type: 'init' | 'changed'): Promise<void> {
    try {
      const view = await this.session.open();
      this.post({ type, summary: await panelSummary(view) });
      this.panel.title = `Curation: ${view.workspace.split(/[\\/]/).pop()}`;
    } catch (err) {
      this.post({ type: 'status', text: (err as Error).message });
    }
  }
}

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    // Only the built page assets; thumbnails come as data: URLs, so no workspace folder is exposed.
    localResourceRoots: [mediaRoot(extensionUri)],
  };
}
