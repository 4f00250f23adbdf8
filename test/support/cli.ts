/**
 * Runs the real `curate` CLI in-process (the same `main` that bin/curate.js calls), capturing what it
 * writes to stdout and stderr. Call {@link captureCli} at the top of a test file.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, vi } from 'vitest';
import { main } from '../../src/curate/cli/main.js';
import { tempDir } from '../helpers.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface CliRun {
  code: number;
  out: string;
}

export interface CliCapture {
  curate(...args: string[]): Promise<CliRun>;
  /** Everything written to stderr since the current test began. */
  stderr(): string;
}

export function captureCli(): CliCapture {
  let stderr = '';
  beforeEach(() => {
    stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());
  return {
    async curate(...args) {
      let out = '';
      const code = await main(['node', 'curate', ...args], (s) => (out += s));
      return { code, out };
    },
    stderr: () => stderr,
  };
}

/** A script that runs the CLI from source (`node --import tsx ENTRY …args`, from the repository root). */
export async function cliEntry(): Promise<string> {
  const entry = path.join(await tempDir(), 'curate-entry.mts');
  await writeFile(
    entry,
    `import { main } from ${JSON.stringify(path.join(ROOT, 'src/curate/cli/main.ts'))};\n` +
      'process.exitCode = await main(process.argv);\n',
  );
  return entry;
}

export interface SpawnedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Run the CLI from source in a child process, stdout and stderr piped (not a terminal). */
export async function spawnCli(args: string[], env: Record<string, string> = {}): Promise<SpawnedRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', await cliEntry(), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  return { code, signal, out, err };
}
