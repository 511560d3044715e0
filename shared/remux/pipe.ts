/**
 * Joins two ReMux streams, as the extension does between the bridge's link and the edge: bytes,
 * FIN and RESET (with its code) cross in both directions, and credit is returned to one side
 * only as the other side takes the bytes — so a stalled reader at either end holds the writer at
 * the other end to a window, with nothing in between buffering more.
 */
import type { MuxStream } from './stream.ts';

/**
 * What the pipe needs of each end: a ReMux stream is one; so is anything else with the same
 * contract (a WebTransport stream in the extension, a stream still waiting for its transport).
 */
export type PipeEnd = Pick<MuxStream, 'attach' | 'write' | 'end' | 'reset' | 'consume'>;

export interface PipeEvents {
  /** Bytes moved a → b (`up`) and b → a (`down`). */
  onBytes?(up: number, down: number): void;
  /** Both directions finished or one side was reset; `code` is the RESET code, if any, and `by` the end it came from. */
  onClose?(code: number | null, by: 'a' | 'b' | null): void;
}

export function pipeStreams(a: PipeEnd, b: PipeEnd, events: PipeEvents = {}): void {
  let closed = false;
  let ends = 0;
  const finish = (code: number | null, by: 'a' | 'b' | null) => {
    if (closed) return;
    closed = true;
    events.onClose?.(code, by);
  };
  const oneWay = (from: PipeEnd, to: PipeEnd, count: (n: number) => void, side: 'a' | 'b') => {
    let owed = 0;
    from.attach({
      data(piece) {
        count(piece.length);
        if (to.write(piece)) from.consume(piece.length);
        else owed += piece.length;
      },
      end() {
        to.end();
        if (++ends === 2) finish(null, null);
      },
      reset(code) {
        to.reset(code);
        finish(code, side);
      },
    });
    to.attach({
      drain() {
        const n = owed;
        owed = 0;
        if (n > 0) from.consume(n);
      },
    });
  };
  oneWay(a, b, (n) => events.onBytes?.(n, 0), 'a');
  oneWay(b, a, (n) => events.onBytes?.(0, n), 'b');
}
