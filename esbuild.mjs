// Bundles the VS Code extension host (node, CommonJS) and the panel's webview page (browser).
// Type checking stays with `tsc --noEmit` (tsconfig.json, media/tsconfig.json).
//   node esbuild.mjs [--production] [--watch]
import { cp, mkdir } from 'node:fs/promises';
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** Native modules stay outside the bundle; the .vsix carries them with one platform's binaries. */
export const NATIVE_EXTERNALS = ['onnxruntime-node', 'hnswlib-node', 'sharp', '@duckdb/node-api', 'usearch'];

/** transformers.js imports onnxruntime-web too; the extension host only ever runs onnxruntime-node. */
const stubOnnxWeb = {
  name: 'stub-onnxruntime-web',
  setup(build) {
    build.onResolve({ filter: /^onnxruntime-web(\/.*)?$/ }, (args) => ({
      path: args.path,
      namespace: 'stub',
    }));
    build.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      contents: 'module.exports = {};',
      loader: 'js',
    }));
  },
};

/** vega-canvas looks for node-canvas with a top-level await (not allowed in CommonJS); reports
 * render SVG and rasterise with sharp, so the extension gets vega-canvas's "no canvas" answers. */
const stubVegaCanvas = {
  name: 'stub-vega-canvas',
  setup(build) {
    build.onResolve({ filter: /^vega-canvas$/ }, (args) => ({ path: args.path, namespace: 'stub-canvas' }));
    build.onLoad({ filter: /.*/, namespace: 'stub-canvas' }, () => ({
      contents:
        'const none = () => null; export { none as canvas, none as domCanvas, none as image, none as nodeCanvas };',
      loader: 'js',
    }));
  },
};

const common = { bundle: true, minify: production, sourcemap: !production, logLevel: 'warning' };

const extension = {
  ...common,
  entryPoints: ['extension/extension.ts'],
  outfile: 'dist/extension.cjs',
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['vscode', ...NATIVE_EXTERNALS],
  plugins: [stubOnnxWeb, stubVegaCanvas],
  // The sources are ES modules that locate files from import.meta.url.
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: "const importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

const webview = {
  ...common,
  entryPoints: ['media/src/main.ts'],
  outfile: 'dist/media/panel.js',
  platform: 'browser',
  target: 'chrome120',
  format: 'iife',
};

async function copyStyles() {
  await mkdir('dist/media', { recursive: true });
  await cp('media/panel.css', 'dist/media/panel.css');
}

if (watch) {
  for (const options of [extension, webview]) await (await esbuild.context(options)).watch();
  await copyStyles();
} else {
  await Promise.all([esbuild.build(extension), esbuild.build(webview), copyStyles()]);
}
