/**
 * The palette commands (category "Curate"). Each one asks for its inputs with quick picks and input
 * boxes, then calls `src/curate/api.ts` exactly as the CLI does, with progress and cancellation.
 * Every input keeps `ignoreFocusOut`: a multi-step command must not be cancelled half-answered because
 * the panel refreshed or a notification arrived (Escape still cancels).
 */
import path from 'node:path';
import * as vscode from 'vscode';
import {
  addDataset,
  describeMethods,
  embedCatalog,
  EXPORT_FORMATS,
  exportSelection,
  listSelections,
  loadSelection,
  resolveEncoder,
  selectSubset,
  compareAtBudgets,
  defaultCompareRun,
  saveComparison,
  writeRunReport,
  type ExportFormat,
  type MethodDescription,
  parseClassNamesSpec,
  type ClassNamesSpec,
} from '../src/curate/api.js';
import { compareRuns } from './dispatch.js';
import { CuratePanel } from './panel.js';
import { withCancellableProgress } from './progress.js';
import { baseFolder, settings, type Session } from './session.js';

type Command = (session: Session, extensionUri: vscode.Uri) => Promise<unknown>;

export const COMMANDS: Record<string, Command> = {
  'clipcurate.open': openPanel,
  'clipcurate.openWorkspace': openWorkspace,
  'clipcurate.addDataset': addDatasetCommand,
  'clipcurate.embed': embed,
  'clipcurate.select': select,
  'clipcurate.compare': compare,
  'clipcurate.showCompare': showCompareCommand,
  'clipcurate.diff': diffCommand,
  'clipcurate.search': search,
  'clipcurate.accept': (s) => reviewByKey(s, 'accept'),
  'clipcurate.reject': (s) => reviewByKey(s, 'reject'),
  'clipcurate.export': exportCommand,
  'clipcurate.openReport': openReport,
};

async function openPanel(session: Session, extensionUri: vscode.Uri): Promise<CuratePanel> {
  await session.open();
  return CuratePanel.createOrShow(extensionUri, session);
}

/** Pick (or type) a workspace folder, read a dataset into it when it is new, and open the panel. */
async function openWorkspace(session: Session, extensionUri: vscode.Uri): Promise<void> {
  const folder = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: 'Curation workspace folder',
    prompt: 'Created if it does not exist; relative to the open folder',
    value: path.relative(baseFolder(), session.folder) || '.',
  });
  if (folder === undefined) return;
  await session.switchTo(path.resolve(baseFolder(), folder));
  const summary = await (await session.open()).summary();
  if (summary.samples === 0) await addDatasetCommand(session);
  await openPanel(session, extensionUri);
}

async function addDatasetCommand(session: Session): Promise<void> {
  const spec = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: 'Add a dataset to the curation workspace',
    prompt: 'Tar shards (globs, {000..010} ranges), an image folder, or a csv/tsv/jsonl/parquet manifest',
    placeHolder: 'data/shard-{0000..0009}.tar',
  });
  if (!spec) return;
  const view = await session.open();
  const report = await withCancellableProgress(`Reading ${spec}`, (r) =>
    view.withCatalog((catalog) =>
      addDataset(catalog, spec, {
        cwd: baseFolder(),
        signal: r.signal,
        onProgress: (p) =>
          r.report(p.bytesTotal ? p.bytesDone / p.bytesTotal : 0, `${p.samples.toLocaleString()} samples`),
      }),
    ),
  );
  session.changed();
  void vscode.window.showInformationMessage(
    `Read ${report.samplesRead.toLocaleString()} samples from ${spec}` +
      (report.issues.length ? ' (with issues: see the Errors filter)' : '') +
      (report.exactDuplicates.copies
        ? `; ${report.exactDuplicates.copies.toLocaleString()} are byte-identical copies of others ` +
          `(${report.exactDuplicates.groups.toLocaleString()} groups): the exact-dedup method keeps one of each`
        : ''),
  );
}

async function embed(session: Session): Promise<void> {
  const view = await session.open();
  const s = settings();
  await withCancellableProgress('Embedding images and captions', (r) =>
    view.withCatalog(async (catalog) => {
      r.report(0, `loading ${s.model === 'default' ? 'the offline encoder' : s.model}`);
      const encoder = await resolveEncoder(catalog, view.workspace, s.model, {
        device: s.device,
      });
      try {
        const report = await embedCatalog(catalog, view.workspace, encoder, {
          signal: r.signal,
          onProgress: (p) =>
            r.report(
              p.samplesTotal ? p.samplesDone / p.samplesTotal : 0,
              `${p.samplesDone.toLocaleString()} / ${p.samplesTotal.toLocaleString()}`,
            ),
        });
        void vscode.window.showInformationMessage(
          `Embedded ${report.samplesEmbedded.toLocaleString()} samples with ${report.encoder} in ${report.seconds.toFixed(1)} s`,
        );
      } finally {
        await encoder.dispose();
      }
    }),
  );
  session.changed();
}

interface MethodItem extends vscode.QuickPickItem {
  method: MethodDescription;
}

async function pickMethod(title: string, many: false): Promise<MethodDescription | undefined>;
async function pickMethod(title: string, many: true): Promise<MethodDescription[] | undefined>;
async function pickMethod(title: string, many: boolean) {
  const preferred = settings().defaultMethod;
  const items: MethodItem[] = describeMethods().map((m) => ({
    label: m.name,
    description: m.needs.length ? `needs ${m.needs.join(', ')}` : '',
    detail: m.description,
    method: m,
    picked: many ? false : m.name === preferred,
  }));
  items.sort((a, b) => Number(b.label === preferred) - Number(a.label === preferred));
  const picked = await vscode.window.showQuickPick(items, {
    title,
    canPickMany: many,
    matchOnDetail: true,
    ignoreFocusOut: true,
  });
  if (!picked) return undefined;
  return Array.isArray(picked) ? picked.map((p) => p.method) : picked.method;
}

async function askBudget(): Promise<string | undefined> {
  return vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: 'Budget',
    prompt: 'Samples to keep: a count ("5000"), a percentage ("10%") or a fraction ("0.1")',
    value: settings().defaultBudget,
    validateInput: (v) => (/^\s*(\d+(\.\d+)?%?|0?\.\d+)\s*$/.test(v) ? undefined : 'e.g. 5000, 10% or 0.1'),
  });
}

interface SchemaProperty {
  type?: string;
  default?: unknown;
  description?: string;
  enum?: unknown[];
}

/** Parameters from the method's JSON schema: keep the defaults, or go through them one by one. */
async function askParams(method: MethodDescription): Promise<Record<string, unknown> | undefined> {
  const props = (method.params as { properties?: Record<string, SchemaProperty> }).properties ?? {};
  if (Object.keys(props).length === 0) return {};
  const mode = await vscode.window.showQuickPick(
    [
      { label: 'Run with the defaults', detail: describeDefaults(props) },
      { label: 'Set parameters…', detail: 'one input per parameter, defaults filled in' },
    ],
    { title: `${method.name}: parameters`, ignoreFocusOut: true },
  );
  if (!mode) return undefined;
  if (mode.label.startsWith('Run')) return {};
  const params: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(props)) {
    const value = p.enum
      ? (
          await vscode.window.showQuickPick(
            p.enum.map((e) => ({ label: String(e), picked: e === p.default })),
            { title: `${method.name}: ${name}`, placeHolder: p.description ?? '', ignoreFocusOut: true },
          )
        )?.label
      : await vscode.window.showInputBox({
          ignoreFocusOut: true,
          title: `${method.name}: ${name}`,
          prompt: p.description ?? '',
          value: p.default === undefined ? '' : JSON.stringify(p.default),
        });
    if (value === undefined) return undefined;
    if (value === '' || value === JSON.stringify(p.default)) continue;
    params[name] = p.type === 'string' || p.enum ? value : parseJson(value);
  }
  return params;
}

function describeDefaults(props: Record<string, SchemaProperty>): string {
  return Object.entries(props)
    .map(([k, p]) => `${k}=${JSON.stringify(p.default)}`)
    .join(', ');
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

async function select(session: Session): Promise<void> {
  const method = await pickMethod('Selection method', false);
  if (!method) return;
  const from = await askFrom(session);
  if (from === undefined) return;
  // A filter keeps everything that passes: no budget to ask for.
  const budget = method.kind === 'filter' ? '' : await askBudget();
  if (budget === undefined || (budget === '' && method.kind !== 'filter')) return;
  const params = await askParams(method);
  if (!params) return;
  // Methods with latent classes (ClipCov, SAS) can use class names as zero-shot classes.
  const usesClasses = 'classes' in ((method.params as { properties?: object }).properties ?? {});
  const classNames = usesClasses ? await askClassNames('zero-shot latent classes') : null;
  if (classNames === undefined) return;
  const view = await session.open();
  const what = `${budget ? `${budget} ` : ''}with ${method.name}${from ? ` from ${from}` : ''}`;
  const stored = await withCancellableProgress(`Selecting ${what}`, (r) =>
    view.withCatalog((catalog) =>
      selectSubset(catalog, view.workspace, {
        method: method.name,
        ...(budget ? { budget } : {}),
        ...(from ? { from } : {}),
        ...(classNames ? { classNames } : {}),
        params,
        signal: r.signal,
        progress: (done, total) => r.report(total ? done / total : 0, ''),
      }),
    ),
  );
  await view.useSelection(stored.name);
  session.changed();
  void vscode.window.showInformationMessage(
    `${method.name} picked ${stored.sampleIds.length.toLocaleString()} samples (selection ${stored.name})`,
  );
}

/**
 * Optional class names (as the CLI's --class-names: `a,b,c`, `@FILE` or `field:NAME`), checked as typed;
 * null = none given, undefined = cancelled.
 */
async function askClassNames(purpose: string): Promise<ClassNamesSpec | null | undefined> {
  const text = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: `Class names for ${purpose} (optional)`,
    placeHolder: 'cat,dog,ship  ·  @/path/names.txt  ·  field:label  (empty: none)',
    validateInput: (value) => {
      if (!value.trim()) return undefined;
      try {
        parseClassNamesSpec(value);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  });
  if (text === undefined) return undefined;
  return text.trim() ? parseClassNamesSpec(text) : null;
}

/** Where to select from: the whole pool ('') or an earlier selection's picks; undefined = cancelled. */
async function askFrom(session: Session): Promise<string | undefined> {
  const view = await session.open();
  const names = await listSelections(view.workspace);
  if (names.length === 0) return '';
  const picked = await vscode.window.showQuickPick(
    [
      { label: 'whole pool', description: 'every embedded sample', name: '' },
      ...names.map((n) => ({ label: n, description: 'select within its picks', name: n })),
    ],
    { title: 'Select from', ignoreFocusOut: true },
  );
  return picked?.name;
}

async function compare(session: Session, extensionUri: vscode.Uri): Promise<void> {
  const methods = await pickMethod('Methods to compare', true);
  if (!methods?.length) return;
  const budget = await askBudget();
  if (!budget) return;
  const run = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: 'Compare run name (its selections are saved as <run>/<method>-<budget>)',
    value: defaultCompareRun([budget]),
  });
  if (!run) return;
  const classNames = await askClassNames('zero-shot accuracy of proxy CLIP, and latent classes');
  if (classNames === undefined) return;
  const view = await session.open();
  // A run that exists is replaced only when the user says so (the CLI's --overwrite).
  const existing = await listSelections(view.workspace);
  let overwrite = false;
  if (existing.some((n) => n === run || n.startsWith(`${run}/`))) {
    const answer = await vscode.window.showWarningMessage(
      `Compare run '${run}' exists. Replace its selections and tables?`,
      { modal: true },
      'Replace',
    );
    if (answer !== 'Replace') return;
    overwrite = true;
  }
  const report = await withCancellableProgress(`Comparing ${methods.length} methods at ${budget}`, (r) =>
    view.withCatalog(async (catalog) => {
      const comparisons = await compareAtBudgets(catalog, view.workspace, {
        methods: methods.map((m) => m.name),
        budgets: [budget],
        run,
        overwrite,
        ...(classNames ? { classNames } : {}),
        signal: r.signal,
        onMethod: (m, _budget, done, total) => r.report(done / total, m),
      });
      for (const c of comparisons) await saveComparison(view.workspace, c);
      return writeRunReport(catalog, view.workspace, {
        name: run,
        comparisons,
        signal: r.signal,
      });
    }),
  );
  session.changed();
  (await openPanel(session, extensionUri)).showCompare(run);
  await showReport(report.html);
}

/** Pick a saved compare run and show its table in the panel. */
async function showCompareCommand(session: Session, extensionUri: vscode.Uri): Promise<void> {
  const view = await session.open();
  const runs = await compareRuns(view.workspace);
  if (runs.length === 0) {
    void vscode.window.showWarningMessage('No compare run yet: run "Curate: Compare Methods…" first.');
    return;
  }
  const picked = await vscode.window.showQuickPick(
    runs.map((r) => ({ label: r.run, description: `budgets ${r.budgets.join(', ')}` })),
    { title: 'Compare run to show', ignoreFocusOut: true },
  );
  if (picked) (await openPanel(session, extensionUri)).showCompare(picked.label);
}

async function search(session: Session, extensionUri: vscode.Uri): Promise<void> {
  const text = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: 'Search images by text',
    placeHolder: 'a red truck',
  });
  if (!text) return;
  const panel = await openPanel(session, extensionUri);
  panel.postWhenReady({ type: 'search', text });
}

async function reviewByKey(session: Session, decision: 'accept' | 'reject'): Promise<void> {
  const keys = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: `${decision === 'accept' ? 'Accept' : 'Reject'} samples`,
    prompt: 'Sample keys, separated by commas or spaces (the panel does this by clicking)',
  });
  if (!keys) return;
  const view = await session.open();
  const { setReview } = await import('../src/curate/api.js');
  const changed = await view.withCatalog((catalog) =>
    setReview(catalog, keys.split(/[\s,]+/).filter(Boolean), decision),
  );
  session.changed();
  void vscode.window.showInformationMessage(`${changed} sample(s) ${decision}ed`);
}

interface SelectionItem extends vscode.QuickPickItem {
  name: string;
}

/** "clip-score · 60 of 240 (25%)" and "made 2 Dec 2026, 11:31" for a stored selection. */
async function describeSelection(
  workspace: string,
  name: string,
  current: string | null,
): Promise<SelectionItem> {
  const shown = name === current ? ' · shown in the panel' : '';
  try {
    const s = await loadSelection(workspace, name);
    const made = new Date(s.provenance.createdAt);
    return {
      name,
      label: name,
      description: `${s.method} · ${s.budget.count.toLocaleString()} of ${s.pool.toLocaleString()} (${s.budget.requested})${shown}`,
      detail: Number.isNaN(made.getTime()) ? undefined : `made ${made.toLocaleString()}`,
    };
  } catch (err) {
    return { name, label: name, description: `cannot be read: ${(err as Error).message}${shown}` };
  }
}

/**
 * Pick a stored selection, each with its method, budget and date. The one the panel shows comes first,
 * so Enter takes what is on screen.
 */
async function pickSelection(session: Session, title: string): Promise<string | undefined> {
  const view = await session.open();
  const names = await listSelections(view.workspace);
  if (names.length === 0) {
    void vscode.window.showWarningMessage('No selection yet: run "Curate: Select a Subset…" first.');
    return undefined;
  }
  const current = view.selection;
  if (names.length === 1) return names[0];
  const ordered = [...names].sort((a, b) => Number(b === current) - Number(a === current));
  const items = await Promise.all(ordered.map((n) => describeSelection(view.workspace, n, current)));
  return (await vscode.window.showQuickPick(items, { title, ignoreFocusOut: true, matchOnDescription: true }))
    ?.name;
}

/** Pick two selections and show what each kept that the other did not, in the panel. */
async function diffCommand(session: Session, extensionUri: vscode.Uri): Promise<void> {
  const view = await session.open();
  if ((await listSelections(view.workspace)).length < 2) {
    void vscode.window.showWarningMessage(
      'A diff needs two selections: run "Curate: Select a Subset…" first.',
    );
    return;
  }
  const a = await pickSelection(session, 'Diff: first selection (A)');
  if (!a) return;
  const b = await pickSelection(session, `Diff: second selection (B), compared with ${a}`);
  if (!b) return;
  if (a === b) throw new Error(`pick two different selections (both were '${a}')`);
  (await openPanel(session, extensionUri)).showDiff(a, b);
}

async function exportCommand(session: Session): Promise<void> {
  const name = await pickSelection(session, 'Selection to export');
  if (!name) return;
  const format = (
    await vscode.window.showQuickPick(
      EXPORT_FORMATS.map((f) => ({ label: f })),
      { title: 'Export format', ignoreFocusOut: true },
    )
  )?.label as ExportFormat | undefined;
  if (!format) return;
  const view = await session.open();
  const out = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    title: 'Export to folder',
    prompt: 'Relative to the open folder; an earlier export there is replaced',
    value: path.relative(baseFolder(), path.join(view.workspace, 'exports', `${name}-${format}`)),
  });
  if (!out) return;
  const report = await withCancellableProgress(`Exporting ${name} as ${format}`, (r) =>
    view.withCatalog((catalog) =>
      exportSelection(catalog, view.workspace, name, {
        format,
        out: path.resolve(baseFolder(), out),
        overwrite: true,
        signal: r.signal,
        onProgress: (done, total, phase) => r.report(total ? done / total : 0, phase),
      }),
    ),
  );
  session.changed();
  void vscode.window.showInformationMessage(
    `Exported ${report.samples.toLocaleString()} samples to ${out}` +
      (report.skipped.length ? ` (${report.skipped.length} skipped: see provenance.json)` : ''),
  );
}

async function openReport(session: Session): Promise<void> {
  const name = await pickSelection(session, 'Report of the selection');
  if (!name) return;
  const view = await session.open();
  const report = await withCancellableProgress(`Writing the report of ${name}`, (r) =>
    view.withCatalog((catalog) =>
      writeRunReport(catalog, view.workspace, { name, selections: [name], signal: r.signal }),
    ),
  );
  await showReport(report.html);
}

async function showReport(file: string): Promise<void> {
  const open = await vscode.window.showInformationMessage(`Report written: ${file}`, 'Open in Browser');
  if (open) await vscode.env.openExternal(vscode.Uri.file(file));
}
