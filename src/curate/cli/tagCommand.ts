/**
 * `curate tag`: free-form tags on samples (tags.ts), the same ones the panel shows and filters by.
 * Tag samples by key, or every sample matching field filters (fieldFilters.ts), a selection verdict or
 * another tag: the panel's "Tag all shown" from the command line.
 */
import { Argument, Option, type Command } from 'commander';
import { listValue } from '@duckdb/node-api';
import { BROWSE_FILTERS, SelectionBrowser, type BrowseFilter } from '../browse.js';
import type { Catalog } from '../catalog.js';
import { FilterInputError, parseFilter } from '../fieldFilters.js';
import { changeTags, SampleTags, TagInputError } from '../tags.js';
import { withCatalog, workspaceOf } from './context.js';
import { printable } from './escape.js';
import { UsageError } from './options.js';

const ACTIONS = ['add', 'remove', 'list', 'show'] as const;

interface TagOptions {
  key?: string[];
  where?: string[];
  filter?: BrowseFilter;
  selection?: string;
  tagged?: string[];
  all?: boolean;
}

export function registerTagCommand(program: Command, out: (text: string) => void): void {
  program
    .command('tag')
    .description(
      'free-form tags on samples: add/remove a tag (by key or on every sample matching filters), ' +
        'list the tags, show the keys with a tag',
    )
    .addArgument(new Argument('<action>', 'what to do').choices([...ACTIONS]))
    .argument('[tag]', 'the tag (add, remove, show)')
    .option('--key <keys...>', 'these sample keys')
    .option(
      '--where <filters...>',
      'field filters, all of which must hold: metadata.label=cat, width>32, caption~dog (= != < > ~contains)',
    )
    .addOption(
      new Option('--filter <filter>', 'the selection verdict or the review').choices([...BROWSE_FILTERS]),
    )
    .option('--selection <name>', 'the selection --filter selected/unselected and a score filter refer to')
    .option('--tagged <tags...>', 'only samples that already carry these tags')
    .option('--all', 'every sample of the catalog (when no key or filter is given)')
    .action(
      async (action: (typeof ACTIONS)[number], tag: string | undefined, o: TagOptions, cmd: Command) => {
        const workspace = workspaceOf(cmd);
        try {
          if (action === 'list') {
            for (const t of (await SampleTags.load(workspace)).counts())
              out(`${printable(t.tag)}\t${t.count}\n`);
            return;
          }
          if (!tag) throw new UsageError(`tag ${action} needs the tag`);
          if (action === 'show') {
            for (const key of (await SampleTags.load(workspace)).keysWith(tag)) out(`${printable(key)}\n`);
            return;
          }
          const keys = await withCatalog(workspace, (catalog) => targetKeys(catalog, workspace, o));
          const n = await changeTags(workspace, keys, [tag], action === 'remove');
          out(
            `${action === 'add' ? 'tagged' : 'untagged'} ${n} sample${n === 1 ? '' : 's'} “${printable(tag)}”\n`,
          );
        } catch (err) {
          if (err instanceof TagInputError || err instanceof FilterInputError)
            throw new UsageError(err.message);
          throw err;
        }
      },
    );
}

async function targetKeys(catalog: Catalog, workspace: string, o: TagOptions): Promise<string[]> {
  const scoped = o.where !== undefined || o.filter !== undefined || o.tagged !== undefined;
  if (o.key && scoped)
    throw new UsageError('give either --key or filters (--where, --filter, --tagged), not both');
  if (o.key) {
    const known = await catalog.rows<{ key: string }>(
      'SELECT key FROM samples WHERE key IN (SELECT unnest($keys::VARCHAR[]))',
      { keys: listValue(o.key) },
    );
    const found = new Set(known.map((r) => r.key));
    const unknown = o.key.filter((k) => !found.has(k));
    if (unknown.length)
      throw new UsageError(
        `not in the catalog: ${unknown
          .slice(0, 5)
          .map((k) => printable(k))
          .join(', ')}`,
      );
    return o.key;
  }
  if (!scoped && !o.all)
    throw new UsageError('say which samples: --key, --where, --filter, --tagged or --all');
  if ((o.filter === 'selected' || o.filter === 'unselected') && !o.selection)
    throw new UsageError(`--filter ${o.filter} needs --selection <name>`);
  const browser = await SelectionBrowser.open(catalog, workspace, o.selection);
  try {
    return await browser.keys({
      ...(o.filter ? { filter: o.filter } : {}),
      ...(o.where ? { where: o.where.map(parseFilter) } : {}),
      ...(o.tagged ? { tags: o.tagged } : {}),
    });
  } finally {
    await browser.close();
  }
}
