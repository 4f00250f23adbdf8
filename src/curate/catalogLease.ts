/**
 * The catalog for a long-lived user of a workspace (the VS Code panel) that must not lock other
 * processes out of it: DuckDB lets one process write the file at a time, and the CLI runs beside the
 * panel. The catalog is opened on first use, shared by the operations in flight, and closed as soon as
 * none has run for `idleMs`; while another process holds it, opening waits (Catalog.open's retries).
 */
import { Catalog } from './catalog.js';

export interface CatalogLeaseOptions {
  /** Close the catalog after this long without an operation (default 500 ms). */
  idleMs?: number;
  /** How long an operation waits for another process to release the catalog (default 10 s). */
  lockWaitMs?: number;
}

export class CatalogLease {
  private opening: Promise<Catalog> | undefined;
  private current: Catalog | undefined;
  private active = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private disposed = false;

  constructor(
    readonly workspace: string,
    private readonly options: CatalogLeaseOptions = {},
  ) {}

  /** Whether the catalog is open (or being opened) by this lease now. */
  get held(): boolean {
    return this.opening !== undefined;
  }

  /**
   * Run `work` with the catalog open. Everything `work` keeps on the connection (temporary tables)
   * lasts until the lease goes idle: callers key such state by the Catalog object they were given.
   */
  async use<T>(work: (catalog: Catalog) => Promise<T>): Promise<T> {
    if (this.disposed) throw new Error(`the view of ${this.workspace} is closed`);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.active++;
    try {
      const catalog = await this.open();
      return await work(catalog);
    } finally {
      if (--this.active === 0) this.closeWhenIdle();
    }
  }

  /** Close the catalog now (waits for nothing: call when no operation is in flight). */
  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.idleTimer);
    await this.release();
  }

  private open(): Promise<Catalog> {
    if (!this.opening) {
      const opening: Promise<Catalog> = Catalog.open(this.workspace, {
        ...(this.options.lockWaitMs !== undefined ? { lockWaitMs: this.options.lockWaitMs } : {}),
      }).then((catalog) => {
        if (this.opening === opening) this.current = catalog;
        return catalog;
      });
      this.opening = opening;
      // A failed open (busy workspace) is not kept: the next operation tries again.
      opening.catch(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    }
    return this.opening;
  }

  private closeWhenIdle(): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.active === 0) void this.release();
    }, this.options.idleMs ?? 500);
    // An idle lease must not keep a process (a test, a script) alive.
    this.idleTimer.unref();
  }

  /**
   * Close the catalog. An open one closes synchronously, so the next operation's open never overlaps
   * it (two DuckDB instances of one file in one process must not write at once).
   */
  private async release(): Promise<void> {
    const opening = this.opening;
    const current = this.current;
    this.opening = undefined;
    this.current = undefined;
    if (current) current.close();
    else
      await opening?.then(
        (c) => c.close(),
        () => undefined,
      );
  }
}
