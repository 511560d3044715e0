/**
 * A meek-v2 session's uploads at the edge (PROTOCOL.md §1.1). Several may be in flight and may
 * arrive in any order; they reach the upstream strictly in seq order:
 * - seq ≤ last processed: a retry of one already done — answered, nothing reaches the upstream;
 * - a seq being processed or waiting: the retry joins it and gets the same outcome;
 * - last < seq ≤ last + window: waits for the seqs before it (at most `waitMs`, then WAIT → 503,
 *   which the client retries);
 * - beyond the window: SEQ (409).
 * A failed `process` advances nothing: the client's retry runs it again.
 */
import { MeekError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import { isValidSeq, PIPELINE_WINDOW } from './headers.ts';

/** How long an upload waits for an earlier seq: under the client's request timeout (20 s). */
export const PIPELINE_WAIT_MS = 15_000;

interface Pending {
  /** Settles when this seq is processed (or fails). */
  done: Promise<void>;
  /** Lets it run: the seq before it was processed. */
  release(): void;
  bytes: number;
}

export class UploadPipeline {
  private last = 0;
  private readonly pending = new Map<number, Pending>();
  private closedWith: MeekError | null = null;

  constructor(
    private readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>,
    readonly window = PIPELINE_WINDOW,
    private readonly waitMs = PIPELINE_WAIT_MS,
  ) {}

  get lastSeq(): number {
    return this.last;
  }

  /** Body bytes held by uploads that wait for their turn (the session's memory counts them). */
  get waitingBytes(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.bytes;
    return n;
  }

  /** Runs `process` in seq order; `replayed` when this seq was already processed. */
  async upload(seq: number, bytes: number, process: () => Promise<void>): Promise<{ replayed: boolean }> {
    if (this.closedWith) throw this.closedWith;
    if (!isValidSeq(seq)) throw new MeekError('HEADER', `X-Meek-Seq ${seq} out of range`);
    if (seq <= this.last) return { replayed: true };
    const joined = this.pending.get(seq);
    if (joined) {
      await joined.done;
      return { replayed: true };
    }
    if (seq > this.last + this.window) throw new MeekError('SEQ', `seq ${seq} is beyond the window (last ${this.last} + ${this.window})`);
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    const entry: Pending = { done: Promise.resolve(), release, bytes };
    entry.done = this.run(seq, turn, process);
    this.pending.set(seq, entry);
    if (seq === this.last + 1) release();
    entry.done.catch(() => undefined);
    await entry.done;
    return { replayed: false };
  }

  /** Ends every waiting upload with `error` (the session is gone); later calls get it too. */
  close(error = new MeekError('GONE', 'session ended')): void {
    this.closedWith = error;
    for (const p of this.pending.values()) p.release();
  }

  private async run(seq: number, turn: Promise<void>, process: () => Promise<void>): Promise<void> {
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const waited = await Promise.race([
      turn.then(() => true),
      new Promise<boolean>((resolve) => (timer = this.clock.setTimeout(() => resolve(false), this.waitMs))),
    ]);
    this.clock.clearTimeout(timer!);
    try {
      if (this.closedWith) throw this.closedWith;
      if (!waited) throw new MeekError('WAIT', `seq ${seq} waited ${this.waitMs} ms for seq ${this.last + 1}`);
      await process();
      this.last = seq;
    } finally {
      this.pending.delete(seq);
    }
    // Its successor may have arrived already and waits for this one.
    this.pending.get(seq + 1)?.release();
  }
}
