/**
 * The curation workspace the extension works on: its folder (setting `clipcurate.workspaceFolder`,
 * relative to the first VS Code folder), and the one `CurationView` of it that commands and the panel
 * share. The view opens the workspace's catalog only while an operation runs, so the CLI in a terminal
 * beside the panel can use the same workspace; what the CLI changes (selections, embeddings, the
 * index) is noticed by a file watcher and shown.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import { CurationView, listSelections, type Device } from '../src/curate/api.js';

export interface Settings {
  workspaceFolder: string;
  model: string;
  device: Device;
  defaultMethod: string;
  defaultBudget: string;
  mapPoints: number;
}

export function settings(): Settings {
  const c = vscode.workspace.getConfiguration('clipcurate');
  return {
    workspaceFolder: c.get('workspaceFolder', '.curate'),
    model: c.get('model', 'default'),
    device: c.get<Device>('device', 'auto'),
    defaultMethod: c.get('defaultMethod', 'clip-score'),
    defaultBudget: c.get('defaultBudget', '10%'),
    mapPoints: c.get('mapPoints', 10_000),
  };
}

/** The VS Code folder that relative paths (workspace, datasets) are resolved against. */
export function baseFolder(): string {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
}

/** Files the CLI writes when it changes what the panel shows (the catalog itself the view writes too). */
const WATCHED = '{selections/**,embeddings/**/store.json,index/*.json}';

export class Session implements vscode.Disposable {
  private view: Promise<CurationView> | undefined;
  private dir: string | undefined;
  private watcher: vscode.FileSystemWatcher | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Selections the view knew of, to tell one the CLI just made. */
  private knownSelections = new Set<string>();
  private readonly changes = new vscode.EventEmitter<void>();
  /** Fired when the workspace changed (datasets, embeddings, selections, reviews), here or by the CLI. */
  readonly onDidChange = this.changes.event;

  get folder(): string {
    return this.dir ?? path.resolve(baseFolder(), settings().workspaceFolder);
  }

  /** Use another workspace folder from now on. */
  async switchTo(folder: string): Promise<void> {
    await this.close();
    this.dir = folder;
    this.changes.fire();
  }

  /** The view of the workspace, created on first use (it holds the catalog only while it works). */
  open(): Promise<CurationView> {
    if (!this.view) {
      const s = settings();
      const folder = this.folder;
      const view = CurationView.open(folder, { encoder: s.model, mapPoints: s.mapPoints });
      this.view = view;
      view.then(
        async () => {
          this.knownSelections = new Set(await listSelections(folder));
          this.watch(folder);
        },
        () => {
          if (this.view === view) this.view = undefined;
        },
      );
    }
    return this.view;
  }

  changed(): void {
    this.changes.fire();
  }

  async close(): Promise<void> {
    this.unwatch();
    const view = this.view;
    this.view = undefined;
    if (view) await (await view.catch(() => undefined))?.close();
  }

  dispose(): void {
    void this.close();
    this.changes.dispose();
  }

  private watch(folder: string): void {
    this.unwatch();
    this.watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(vscode.Uri.file(folder), WATCHED),
    );
    const later = () => this.refreshSoon();
    this.watcher.onDidCreate(later);
    this.watcher.onDidChange(later);
    this.watcher.onDidDelete(later);
  }

  private unwatch(): void {
    clearTimeout(this.refreshTimer);
    this.watcher?.dispose();
    this.watcher = undefined;
  }

  /** Another process changed the workspace: a burst of file events becomes one refresh. */
  private refreshSoon(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh(), 300);
  }

  /** Read the workspace again; a selection that appeared (`curate select` in a terminal) is shown. */
  async refresh(): Promise<void> {
    const current = this.view;
    if (!current) return;
    try {
      const view = await current;
      const names = await listSelections(view.workspace);
      const added = names.filter((n) => !this.knownSelections.has(n));
      this.knownSelections = new Set(names);
      await view.refresh();
      if (added.length) await view.useSelection(added[added.length - 1]!);
      if (this.view === current) this.changes.fire();
    } catch (err) {
      void vscode.window.showWarningMessage(
        `Curate: could not read the workspace again: ${(err as Error).message}`,
      );
    }
  }
}
