// Packages the VS Code extension as a platform-specific .vsix:
//   node scripts/package-vsix.mjs [--target linux-x64]   → build/clipcurate-<target>-<version>.vsix
// esbuild bundles everything except the native modules; those are staged with their runtime
// dependencies and only the target platform's binaries (onnxruntime-node ships ~290 MB for all
// platforms, ~45 MB for one). onnxruntime-web (transformers.js's browser runtime) is not carried.
// hnswlib-node compiles at `npm install`, so a target is packaged on a machine of that platform
// (linux-x64, linux-arm64, darwin-x64, darwin-arm64, win32-x64 are what all native modules support).
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const host = `${process.platform}-${process.arch}`;
const targetFlag = process.argv.indexOf('--target');
const target = targetFlag > 0 ? process.argv[targetFlag + 1] : host;
if (target !== host) {
  console.error(
    `package-vsix: cannot package ${target} on ${host}: hnswlib-node's binary is compiled for this machine; ` +
      `run this script on a ${target} machine`,
  );
  process.exit(2);
}
const [platform, arch] = target.split('-');

const NATIVE = ['onnxruntime-node', 'hnswlib-node', 'sharp', '@duckdb/node-api', 'usearch'];
/** Dependencies used only by install scripts or at build time. */
const INSTALL_ONLY = new Set(['adm-zip', 'global-agent', 'node-addon-api']);

const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
const stage = path.join(ROOT, 'build', `vsix-${target}`);
const out = path.join(ROOT, 'build', `${pkg.name}-${target}-${pkg.version}.vsix`);

execFileSync(process.execPath, ['esbuild.mjs', '--production'], { cwd: ROOT, stdio: 'inherit' });
await rm(stage, { recursive: true, force: true });
await mkdir(stage, { recursive: true });

const manifest = {
  name: pkg.name,
  displayName: pkg.displayName,
  description: pkg.description,
  version: pkg.version,
  publisher: pkg.publisher,
  license: pkg.license,
  engines: pkg.engines,
  categories: pkg.categories,
  main: pkg.main,
  activationEvents: pkg.activationEvents,
  contributes: pkg.contributes,
  dependencies: Object.fromEntries(NATIVE.map((n) => [n, pkg.dependencies[n]])),
};
await writeFile(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2));
await cp(path.join(ROOT, 'extension', 'vsix-readme.md'), path.join(stage, 'README.md'));
for (const file of ['LICENSE', 'dist/extension.cjs', 'dist/media', 'assets', 'data/demo'])
  await cp(path.join(ROOT, file), path.join(stage, file), { recursive: true });
await writeFile(
  path.join(stage, '.vscodeignore'),
  ['**/*.map', '**/*.d.ts', '**/*.md', '!README.md', ''].join('\n'),
);

/** Copy a module and its runtime dependency closure, leaving out other platforms' binaries. */
const copied = new Set();
async function copyModule(name) {
  if (copied.has(name) || INSTALL_ONLY.has(name)) return;
  const from = path.join(ROOT, 'node_modules', name);
  if (!existsSync(from)) return; // an optional dependency for another platform
  copied.add(name);
  await cp(from, path.join(stage, 'node_modules', name), {
    recursive: true,
    filter: (src) => keep(path.relative(from, src)),
  });
  const meta = JSON.parse(await readFile(path.join(from, 'package.json'), 'utf8'));
  const dropped = Object.keys(meta.dependencies ?? {}).filter((d) => INSTALL_ONLY.has(d));
  if (dropped.length) {
    // The staged copy is already installed: its install-time dependencies and scripts go.
    for (const d of dropped) delete meta.dependencies[d];
    for (const s of ['preinstall', 'install', 'postinstall']) delete meta.scripts?.[s];
    await writeFile(path.join(stage, 'node_modules', name, 'package.json'), JSON.stringify(meta, null, 2));
  }
  for (const dep of Object.keys({ ...meta.dependencies, ...meta.optionalDependencies }))
    await copyModule(dep);
}

function keep(rel) {
  const parts = rel.split(path.sep);
  // onnxruntime-node: bin/napi-v*/<platform>/<arch>/…
  const napi = parts.findIndex((p) => p.startsWith('napi-v'));
  if (napi >= 0 && parts.length > napi + 1 && parts[napi + 1] !== platform) return false;
  if (napi >= 0 && parts.length > napi + 2 && parts[napi + 2] !== arch) return false;
  // hnswlib-node: compiler intermediates and sources
  if (parts.includes('obj.target') || parts.includes('.deps')) return false;
  return true;
}

for (const name of NATIVE) await copyModule(name);

const vsce = path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
execFileSync(
  process.execPath,
  [vsce, 'package', '--target', target, '--allow-missing-repository', '--allow-star-activation', '-o', out],
  { cwd: stage, stdio: 'inherit' },
);
const { size } = await stat(out);
console.log(
  `package-vsix: ${path.relative(ROOT, out)} (${(size / 2 ** 20).toFixed(1)} MiB), modules: ${[...copied].join(', ')}`,
);
