/** Owns a list of disposables and empties it once (the pattern of VS Code's custom-editor sample). */
import type * as vscode from 'vscode';

export abstract class Disposable {
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];

  protected register<T extends vscode.Disposable>(value: T): T {
    if (this.disposed) value.dispose();
    else this.disposables.push(value);
    return value;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
