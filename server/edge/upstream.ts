import type { DownstreamBuffer } from './downstream-buffer.ts';

/** Where a meek session's bytes go: one TCP upstream (raw) or a ReMux demultiplexer (remux). */
export interface Upstream {
  /** Client bytes from one request body; resolves once handed onward (backpressure for uploads). */
  write(bytes: Uint8Array): Promise<void>;
  /** Bytes waiting for the client's next poll. */
  readonly downstream: DownstreamBuffer;
  /** The upstream has ended (bytes it sent may still wait for the client). */
  readonly ended: boolean;
  /** True once the upstream has ended and every byte it sent was taken: the next new seq gets 410. */
  readonly finished: boolean;
  /** Open tunneled streams (raw: 1 while connected). */
  readonly streamCount: number;
  /** Bytes the session holds now (the process budget sums these). */
  memoryUsed(): number;
  /** Writers held by the process budget may go on. */
  relieve(): void;
  /** Ask the client to stop (remux: GOAWAY); the session ends once drained. */
  goaway(): void;
  /** Draining: ends the streams that sit at a quiet moment (remux; raw has none to end). */
  closeQuiet(quietMs: number): void;
  /** After goaway(): the client has read it and nothing is left to carry, so the session may end now. */
  readonly movedAway: boolean;
  close(): void;
}
