import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const DIR = path.resolve(import.meta.dirname);
const RESULTS_MD = path.join(DIR, 'RESULTS.md');
const RESULTS_JSON = path.join(DIR, 'out', 'results.json');

/**
 * Replace one named section of bench/RESULTS.md (between marker comments) and its raw numbers in
 * bench/out/results.json, leaving the other benchmarks' sections as they are.
 */
export async function writeSection(name: string, markdown: string, raw: unknown): Promise<void> {
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
  const body = `<!-- ${name}:start -->\n${markdown}\n\nMeasured ${new Date().toISOString().slice(0, 10)} on ${machine}.\n<!-- ${name}:end -->`;
  let doc = existsSync(RESULTS_MD)
    ? await readFile(RESULTS_MD, 'utf8')
    : '# Benchmark results\n\nWritten by `npm run bench`.\n';
  const pattern = new RegExp(`<!-- ${name}:start -->[\\s\\S]*?<!-- ${name}:end -->`);
  doc = pattern.test(doc) ? doc.replace(pattern, body) : `${doc.trimEnd()}\n\n${body}\n`;
  await writeFile(RESULTS_MD, doc);

  await mkdir(path.dirname(RESULTS_JSON), { recursive: true });
  const all = existsSync(RESULTS_JSON)
    ? (JSON.parse(await readFile(RESULTS_JSON, 'utf8')) as Record<string, unknown>)
    : {};
  all[name] = { measured: new Date().toISOString(), machine, results: raw };
  await writeFile(RESULTS_JSON, JSON.stringify(all, null, 2) + '\n');
}

/** The raw numbers a section was last written with (bench/out/results.json), for partial re-runs. */
export async function previousResults<T>(name: string): Promise<T | undefined> {
  if (!existsSync(RESULTS_JSON)) return undefined;
  const all = JSON.parse(await readFile(RESULTS_JSON, 'utf8')) as Record<string, { results: T }>;
  return all[name]?.results;
}

/**
 * The cells of the table rows in one section of bench/RESULTS.md (header and rule left out): what a
 * partial re-run keeps when bench/out/results.json, which is not committed, is not on this machine.
 */
export async function previousTableRows(name: string): Promise<string[][]> {
  if (!existsSync(RESULTS_MD)) return [];
  const doc = await readFile(RESULTS_MD, 'utf8');
  const section = new RegExp(`<!-- ${name}:start -->([\\s\\S]*?)<!-- ${name}:end -->`).exec(doc)?.[1] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[-:| ]+\|$/.test(line))
    .slice(1)
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim().replace(/\\\|/g, '|')),
    );
}
