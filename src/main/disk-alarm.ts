/**
 * The disk-space alarm. A full disk is the one failure that LMDB cannot ride out: a commit that
 * finds no free block fails, the worker that owns the environment crashes and restarts into the
 * same full disk, and the node stops serving reads as well. So the node stops taking writes a
 * margin before that: it reads the free space of the data directory's file system every
 * `intervalMs`, and while it is below `freeBytesMin` the router answers writes 507 `NoSpace`
 * (never proposed). Reads continue. The alarm clears by itself at the first reading at or above
 * the bound (after an operator freed space or grew the volume); nothing needs restarting.
 *
 * The space counted is what an unprivileged process may use (statfs `bavail`), as the node runs.
 */
import { statfs } from 'node:fs/promises';

export interface DiskAlarmOptions {
  /** A path on the file system to watch (the data directory). */
  readonly path: string;
  /** Free bytes below which writes are refused; 0 turns the alarm off. */
  readonly freeBytesMin: number;
  /** Milliseconds between readings. Default 1,000. */
  readonly intervalMs?: number;
  /** Told each time the alarm is raised or cleared. */
  readonly onChange?: (raised: boolean, freeBytes: number) => void;
  /** Told when a reading fails (the last state is kept). */
  readonly onError?: (err: unknown) => void;
}

/** The free bytes of the file system holding `path`, as an unprivileged process may use them. */
export async function freeBytesAt(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

export class DiskAlarm {
  /** Free bytes at the last reading (NaN before the first). */
  freeBytes = Number.NaN;
  /** Times the alarm was raised since start. */
  raisedCount = 0;
  /** Readings that failed. */
  readErrors = 0;
  private raisedFlag = false;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;

  private constructor(private readonly opts: DiskAlarmOptions) {}

  /** Takes a first reading (so a node started on a full disk refuses writes from its first request), then keeps reading. */
  static async start(opts: DiskAlarmOptions): Promise<DiskAlarm> {
    if (!Number.isSafeInteger(opts.freeBytesMin) || opts.freeBytesMin < 0)
      throw new RangeError(`freeBytesMin must be a non-negative integer, got ${opts.freeBytesMin}`);
    const alarm = new DiskAlarm(opts);
    if (opts.freeBytesMin === 0) return alarm;
    await alarm.read();
    alarm.timer = setInterval(() => void alarm.read(), opts.intervalMs ?? 1000);
    alarm.timer.unref();
    return alarm;
  }

  /** The alarm is up: writes are refused. */
  get raised(): boolean {
    return this.raisedFlag;
  }

  get freeBytesMin(): number {
    return this.opts.freeBytesMin;
  }

  /** Why writes are refused now, or undefined when they are not. */
  blockedReason(): string | undefined {
    if (!this.raisedFlag) return undefined;
    return `the disk holding ${this.opts.path} has ${this.freeBytes} bytes free, below --disk-free-bytes-min ${this.opts.freeBytesMin}: writes are refused until space is freed (reads continue)`;
  }

  /** For GET /v1/status. */
  status(): { freeBytes: number | null; freeBytesMin: number; alarm: boolean } {
    return { freeBytes: Number.isNaN(this.freeBytes) ? null : this.freeBytes, freeBytesMin: this.opts.freeBytesMin, alarm: this.raisedFlag };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private read(): Promise<void> {
    // One reading at a time: a slow statfs (a hung network volume) does not pile up calls.
    this.reading ??= freeBytesAt(this.opts.path)
      .then((free) => {
        this.freeBytes = free;
        const raised = free < this.opts.freeBytesMin;
        if (raised === this.raisedFlag) return;
        this.raisedFlag = raised;
        if (raised) this.raisedCount++;
        this.opts.onChange?.(raised, free);
      })
      .catch((err: unknown) => {
        this.readErrors++;
        this.opts.onError?.(err);
      })
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }
}
