/**
 * Runs the real `curate` CLI in-process (the same `main` that bin/curate.js calls), capturing what it
 * writes to stdout and stderr. Call {@link captureCli} at the top of a test file.
 */
import { afterEach, beforeEach, vi } from 'vitest';
import { main } from '../../src/curate/cli/main.js';

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
