/** `curate tag`: the panel's tags from the command line, on a real workspace (tags.ts, fieldFilters.ts). */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/curate/cli/main.js';
import { UsageError } from '../../src/curate/cli/options.js';
import { CurationView } from '../../src/curate/view.js';
import { SampleTags } from '../../src/curate/tags.js';
import { miniWorkspace, type MiniWorkspace } from '../support/miniWorkspace.js';

let ws: MiniWorkspace;

beforeAll(async () => {
  ws = await miniWorkspace();
}, 120_000);

async function curate(...args: string[]): Promise<string> {
  let out = '';
  const program = buildProgram((t) => (out += t)).exitOverride();
  await program.parseAsync(['--workspace', ws.workspace, ...args], { from: 'user' });
  return out;
}

describe('curate tag', () => {
  it('tags every sample matching --where and --filter, exactly as the panel grid filters them', async () => {
    const out = await curate(
      'tag',
      'add',
      'cat-pick',
      '--where',
      'metadata.label=cat',
      '--filter',
      'selected',
      '--selection',
      ws.stored.name,
    );
    const view = await CurationView.open(ws.workspace);
    const where = [{ field: 'metadata.label', op: '=' as const, value: 'cat' }];
    const want = (await view.page({ filter: 'selected', where, limit: 240 })).items.map((i) => i.key);
    await view.close();
    expect(want.length).toBeGreaterThan(0);
    expect(out).toBe(`tagged ${want.length} sample${want.length === 1 ? '' : 's'} “cat-pick”\n`);
    expect((await SampleTags.load(ws.workspace)).keysWith('cat-pick').sort()).toEqual([...want].sort());
    expect(await curate('tag', 'list')).toBe(`cat-pick\t${want.length}\n`);
  });

  it('adds and removes by key, shows the keys, and refuses unknown keys and bad filters', async () => {
    const [a, b] = ws.stored.keys;
    expect(await curate('tag', 'add', 'pair', '--key', a!, b!)).toBe('tagged 2 samples “pair”\n');
    expect((await curate('tag', 'show', 'pair')).trim().split('\n').sort()).toEqual([a, b].sort());
    expect(await curate('tag', 'remove', 'pair', '--key', a!)).toBe('untagged 1 sample “pair”\n');
    await expect(curate('tag', 'add', 'x', '--key', 'no-such-key')).rejects.toThrow(
      /not in the catalog: no-such-key/,
    );
    await expect(curate('tag', 'add', 'x', '--where', 'width<wide')).rejects.toThrow(UsageError);
    await expect(curate('tag', 'add', 'x')).rejects.toThrow(/say which samples/);
    await expect(curate('tag', 'add', ' ', '--all')).rejects.toThrow(/a tag cannot be empty/);
    expect((await SampleTags.load(ws.workspace)).keysWith('x')).toEqual([]);
  });
});
