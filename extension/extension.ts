/** Extension entry point: registers the palette commands and the panel serializer, nothing else. */
import * as vscode from 'vscode';
import { COMMANDS } from './commands.js';
import { CuratePanel, PANEL_VIEW_TYPE } from './panel.js';
import { Session } from './session.js';

export function activate(context: vscode.ExtensionContext): void {
  const session = new Session();
  context.subscriptions.push(session);
  for (const [id, run] of Object.entries(COMMANDS)) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async () => {
        try {
          await run(session, context.extensionUri);
        } catch (err) {
          void vscode.window.showErrorMessage(`Curate: ${(err as Error).message}`);
        }
      }),
    );
  }
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel) {
        CuratePanel.revive(panel, context.extensionUri, session);
      },
    }),
  );
}

export function deactivate(): void {
  CuratePanel.current?.dispose();
}
