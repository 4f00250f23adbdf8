import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach } from 'vitest';
import type { DatasetReader, ReadItem, Sample, SampleIssue } from '../src/embed/readers/types.js';

export const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');
export const MINI = path.join(FIXTURES, 'cifar-mini');
export const BROKEN = path.join(FIXTURES, 'broken');
export const MINI_COUNT = 240;

const perTest: string[] = [];
const perFile: string[] = [];
const removeAll = (dirs: string[]) =>
  Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
afterEach(() => removeAll(perTest));
afterAll(() => removeAll(perFile));

/** A fresh temporary folder, removed after the test (or, with `forFile`, after the test file). */
export async function tempDir(options: { forFile?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipcurate-'));
  (options.forFile ? perFile : perTest).push(dir);
  return dir;
}

export interface ReadResult {
  samples: Sample[];
  issues: SampleIssue[];
}

export async function readAll(reader: DatasetReader): Promise<ReadResult> {
  const samples: Sample[] = [];
  const issues: SampleIssue[] = [];
  for (const part of await reader.parts()) {
    for await (const item of reader.read(part) as AsyncIterable<ReadItem>) {
      if (item.type === 'sample') samples.push(item.sample);
      else issues.push(item.issue);
    }
  }
  return { samples, issues };
}

/** The last path component without extensions: `…/cat/train000001.jpg` → `train000001`. */
export function baseKey(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
