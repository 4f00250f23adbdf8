/** The panel's HTML for a VS Code webview: assets through `asWebviewUri`, the CSP from `shell.ts`. */
import * as vscode from 'vscode';
import { panelDocument } from './shell.js';

export function mediaRoot(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, 'dist', 'media');
}

export function panelHtml(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const asset = (name: string) =>
    webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot(extensionUri), name)).toString();
  return panelDocument({
    cspSource: webview.cspSource,
    scriptUri: asset('panel.js'),
    styleUri: asset('panel.css'),
  });
}
