/**
 * The curation workspace the extension works on: its folder (setting `clipcurate.workspaceFolder`,
 * relative to the first VS Code folder), and the one `CurationView` that owns its catalog while the
 * extension runs (DuckDB allows one writer; commands and the panel share it).
 */
import path from 'node:path';
import * as vscode from 'vscode';
import { CurationView, type Device } from '../src/curate/api.js';

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

export class Session implements vscode.Disposable {
  private view: Promise<CurationView> | undefined;
  private dir: string | undefined;
  private readonly changes = new vscode.EventEmitter<void>();
  /** Fired when a command changed the workspace (datasets, embeddings, selections, reviews). */
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

  /** The open view of the workspace, created (with its catalog) on first use. */
  open(): Promise<CurationView> {
    const s = settings();
    this.view ??= CurationView.open(this.folder, { encoder: s.model, mapPoints: s.mapPoints });
    this.view.catch(() => (this.view = undefined));
    return this.view;
  }

  changed(): void {
    this.changes.fire();
  }

  async close(): Promise<void> {
    const view = this.view;
    this.view = undefined;
    if (view) await (await view).close();
  }

  dispose(): void {
    void this.close();
    this.changes.dispose();
  }
}
