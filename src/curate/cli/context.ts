/** What every command needs: the workspace folder from the global flag, and an open catalog. */
import type { Command } from 'commander';
import { DEFAULT_WORKSPACE, openWorkspace, type Catalog } from '../api.js';

interface GlobalOptions {
  workspace?: string;
}

export function workspaceOf(cmd: Command, fallback = DEFAULT_WORKSPACE): string {
  return cmd.optsWithGlobals<GlobalOptions>().workspace ?? fallback;
}

export async function withCatalog<T>(workspace: string, work: (catalog: Catalog) => Promise<T>): Promise<T> {
  const catalog = await openWorkspace(workspace);
  try {
    return await work(catalog);
  } finally {
    catalog.close();
  }
}

/** An AbortSignal that Ctrl-C fires, for the duration of `work`. */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSigint = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  try {
    return await work(abort.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
