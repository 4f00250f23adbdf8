/**
 * The panel page's HTML, the only place that writes it: a strict Content-Security-Policy (no remote
 * content, scripts only with this load's nonce, styles and fonts only from the extension's own
 * origin), asset URLs given by the caller. Dataset text never appears here; the page draws it with DOM
 * calls. Pure, so the webview UI tests load the very same document.
 */
import { randomBytes } from 'node:crypto';

export interface ShellAssets {
  /** The webview's `cspSource` (the origin its local resources are served from). */
  cspSource: string;
  scriptUri: string;
  styleUri: string;
}

export function panelDocument(assets: ShellAssets, nonce = randomBytes(16).toString('base64')): string {
  const csp = [
    "default-src 'none'",
    // Thumbnails arrive as data: URLs in replies; nothing is loaded from the network.
    `img-src ${assets.cspSource} data:`,
    `style-src ${assets.cspSource}`,
    `font-src ${assets.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link href="${assets.styleUri}" rel="stylesheet">
  <title>Curation</title>
</head>
<body>
  <div id="app"></div>
  <script nonce="${nonce}" src="${assets.scriptUri}"></script>
</body>
</html>`;
}
