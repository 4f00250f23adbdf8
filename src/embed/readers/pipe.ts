/**
 * Remote shards in webdataset's `pipe:COMMAND` form: the shard's bytes are what COMMAND writes to its
 * standard output (`pipe:aws s3 cp s3://bucket/{00000..00999}.tar -`, `pipe:curl -s https://…/{0..9}.tar`,
 * `pipe:cat local.tar`). Brace ranges and lists are expanded in the whole spec first, as webdataset and
 * clip-retrieval do, so each expanded command is one part of the dataset; its catalog path is the
 * command itself (`pipe:` included), which is how embed and export read the part again.
 *
 * The command runs under `/bin/sh -c` with no standard input. It is the user's own command line, run
 * with the user's rights, exactly as webdataset runs it: clipcurate never builds one from data it reads.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import braces from 'braces';

export const PIPE_PREFIX = 'pipe:';

/** Bytes of a failing command's standard error kept for its issue message. */
const STDERR_TAIL = 2048;

export function isPipeSpec(spec: string): boolean {
  return spec.startsWith(PIPE_PREFIX);
}

/** The commands of a `pipe:` spec, one per part, brace ranges expanded, in the spec's order, without repeats. */
export function expandPipeSpec(spec: string): string[] {
  return [...new Set(braces.expand(spec.trim()))].filter((c) => c.slice(PIPE_PREFIX.length).trim() !== '');
}

/**
 * Whether a shard's bytes are gzip-compressed: by its name for files (`.tar.gz`, `.tgz`, `.gz`), by the
 * shard name inside the command for pipes (`… s3://b/000.tar.gz -`).
 */
export function shardIsGzipped(shard: string): boolean {
  return isPipeSpec(shard) ? /\.(tgz|tar\.gz)(?=$|[\s'"?#&;|)])/i.test(shard) : /\.(tgz|gz)$/i.test(shard);
}

/**
 * A short human name for a `pipe:` dataset: the folder (or bucket) its shards sit in, else the shard
 * name, else "pipe". `pipe:aws s3 cp s3://laion/part/{0..9}.tar -` → "part".
 */
export function pipeDatasetName(command: string): string {
  const shard = command
    .slice(PIPE_PREFIX.length)
    .split(/\s+/)
    .map((token) => token.replace(/^['"]|['"]$/g, ''))
    .find((token) => /\.(tar|tgz|tar\.gz)$/i.test(token));
  if (!shard) return 'pipe';
  const parts = shard.split(/[/\\]/).filter((p) => p && !p.endsWith(':'));
  const name = parts.length > 1 ? parts.at(-2)! : parts[0]!.replace(/\..*$/, '');
  return name.replace(/[{}]/g, '') || 'pipe';
}

export interface PipeRun {
  /** The command's standard output. */
  stdout: Readable;
  /**
   * Resolves once the command has exited: undefined when it succeeded, else what went wrong ("exit
   * status 1: <the end of its standard error>"). Never rejects.
   */
  failure: Promise<string | undefined>;
  /** Stops the command (the reader finished early or was cancelled). */
  stop(): void;
}

/** Start a `pipe:` part's command; its standard output is the shard. */
export function runPipe(part: string, signal?: AbortSignal): PipeRun {
  const command = part.slice(PIPE_PREFIX.length);
  const child = spawn('/bin/sh', ['-c', command], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(signal ? { signal } : {}),
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL);
  });
  let stopped = false;
  const failure = new Promise<string | undefined>((resolve) => {
    child.on('error', (err) => resolve(stopped ? undefined : `cannot run the command: ${err.message}`));
    child.on('close', (code, signalName) => {
      if (stopped || code === 0) return resolve(undefined);
      const why = signalName ? `killed by ${signalName}` : `exit status ${code}`;
      const said = stderr.trim().split('\n').slice(-3).join(' / ');
      resolve(said ? `${why}: ${said}` : why);
    });
  });
  return {
    stdout: child.stdout,
    failure,
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopped = true;
      child.kill('SIGTERM');
    },
  };
}
