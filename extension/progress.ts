/** Long work in a cancellable notification; VS Code's cancellation token becomes the API's AbortSignal. */
import * as vscode from 'vscode';

export interface Reporter {
  /** Fraction done in [0, 1] and a line of text. */
  report(fraction: number, message: string): void;
  signal: AbortSignal;
}

export function withCancellableProgress<T>(title: string, work: (r: Reporter) => Promise<T>): Thenable<T> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    async (progress, token) => {
      const abort = new AbortController();
      const subscription = token.onCancellationRequested(() => abort.abort(new Error(`${title}: cancelled`)));
      let shown = 0;
      try {
        return await work({
          signal: abort.signal,
          report(fraction, message) {
            const next = Math.max(shown, Math.min(1, fraction)) * 100;
            progress.report({ increment: next - shown * 100, message });
            shown = next / 100;
          },
        });
      } finally {
        subscription.dispose();
      }
    },
  );
}
