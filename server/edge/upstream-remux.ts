/**
 * remux mode: the session's byte stream is ReMux; every stream the client opens is dialed by the
 * edge under the destination policy (PROTOCOL.md §2–3). The mux's output lands in the session's
 * downstream buffer; when that is full the mux stops sending data until a poll drains it.
 */
import type { PaddingPolicy } from '../../shared/remux/padding.ts';
import { GoawayCode } from '../../shared/remux/frame.ts';
import type { Mux } from '../../shared/remux/mux.ts';
import type { Dial } from '../exit/dialer.ts';
import { createExitMux, type ExitBudget, type ExitEvents, type ExitMux } from '../exit/exit-mux.ts';
import { DownstreamBuffer } from './downstream-buffer.ts';
import type { Upstream } from './upstream.ts';

export interface RemuxUpstreamOptions {
  bufferLimit: number;
  maxStreams: number;
  budget: ExitBudget;
  dial: Dial;
  events: ExitEvents;
  padding?: PaddingPolicy;
  /** PADDING frame bytes as they pass, up (from the client) and down. */
  onPadding?(up: number, down: number): void;
}

export class RemuxUpstream implements Upstream {
  readonly downstream: DownstreamBuffer;
  private readonly exit: ExitMux;
  private readonly mux: Mux;
  ended = false;
  private paddingSeen = { up: 0, down: 0 };
  private readonly onPadding: ((up: number, down: number) => void) | null;

  constructor(options: RemuxUpstreamOptions) {
    this.downstream = new DownstreamBuffer(options.bufferLimit);
    this.exit = createExitMux({
      ...options,
      sink: { write: (chunks) => this.downstream.push(chunks), room: () => this.downstream.room },
      onClose: () => {
        // A protocol error: GOAWAY 0x04 is already in the downstream buffer; deliver it, then 410.
        this.ended = true;
        this.downstream.wake();
      },
    });
    this.mux = this.exit.mux;
    this.onPadding = options.onPadding ?? null;
    this.downstream.onDrain = () => this.mux.resume();
  }

  get finished(): boolean {
    return this.ended && this.downstream.size === 0;
  }

  get streamCount(): number {
    return this.exit.streamCount;
  }

  memoryUsed(): number {
    return this.downstream.size + this.mux.memoryUsed;
  }

  relieve(): void {
    this.mux.relieve();
  }

  write(bytes: Uint8Array): Promise<void> {
    if (bytes.length > 0 && !this.ended) this.mux.receive(bytes);
    // Let the mux flush what this produced (WINDOW grants, RESETs) into the response.
    return new Promise((resolve) =>
      setImmediate(() => {
        this.reportPadding();
        resolve();
      }),
    );
  }

  /** Padding since the last report (the mux keeps totals; frames it pads on the way down are reported with the next upload). */
  private reportPadding(): void {
    if (!this.onPadding) return;
    const up = this.mux.paddingIn - this.paddingSeen.up;
    const down = this.mux.paddingOut - this.paddingSeen.down;
    if (up || down) this.onPadding(up, down);
    this.paddingSeen = { up: this.mux.paddingIn, down: this.mux.paddingOut };
  }

  get movedAway(): boolean {
    return this.mux.goawayAcknowledged && this.mux.streamCount === 0 && this.downstream.size === 0;
  }

  closeQuiet(quietMs: number): void {
    this.exit.closeQuiet(quietMs);
  }

  /** A graceful GOAWAY: open streams go on; the registry ends the session once it has moved away. */
  goaway(): void {
    this.mux.goaway(GoawayCode.NORMAL);
    // The GOAWAY flushes in a microtask; wake polls after it is buffered.
    queueMicrotask(() => this.downstream.wake());
  }

  close(): void {
    this.ended = true;
    this.mux.destroy();
    this.downstream.wake();
  }
}
