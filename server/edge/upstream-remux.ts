/**
 * remux mode: the session's byte stream is ReMux; every stream the client opens is dialed by the
 * edge under the destination policy (PROTOCOL.md §2–3). The mux's output lands in the session's
 * downstream buffer; when that is full the mux stops sending data until a poll drains it.
 */
import { Mux } from '../../shared/remux/mux.ts';
import { GoawayCode } from '../../shared/remux/frame.ts';
import type { ProtocolError } from '../../shared/errors.ts';
import { DownstreamBuffer } from './downstream-buffer.ts';
import { relayStream, type Dial, type RelayEvents } from './stream-relay.ts';
import type { Upstream } from './upstream.ts';

/** What the edge counts and logs about tunneled streams, whichever transport carried them. */
export type RemuxStreamEvents = Omit<RelayEvents, 'onClose'> & { onStreamOpen(): void; onStreamClose(): void; onProtocolError(e: ProtocolError): void };

export interface RemuxUpstreamOptions {
  bufferLimit: number;
  maxStreams: number;
  dial: Dial;
  events: RemuxStreamEvents;
}

export class RemuxUpstream implements Upstream {
  readonly downstream: DownstreamBuffer;
  private readonly mux: Mux;
  private ended = false;
  private streams = 0;

  constructor(options: RemuxUpstreamOptions) {
    this.downstream = new DownstreamBuffer(options.bufferLimit);
    const { events } = options;
    this.mux = new Mux({
      role: 'acceptor',
      maxStreams: options.maxStreams,
      sink: { write: (chunks) => this.downstream.push(chunks) },
      onStream: (stream) => {
        this.streams++;
        events.onStreamOpen();
        relayStream(stream, options.dial, {
          ...events,
          onClose: () => {
            this.streams--;
            events.onStreamClose();
          },
        });
      },
      onClose: (error) => {
        // A protocol error: GOAWAY 0x04 is already in the downstream buffer; deliver it, then 410.
        this.ended = true;
        if (error) events.onProtocolError(error);
        this.downstream.wake();
      },
    });
    this.downstream.onDrain = () => this.mux.resume();
  }

  get finished(): boolean {
    return this.ended && this.downstream.size === 0;
  }

  get streamCount(): number {
    return this.streams;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (bytes.length > 0 && !this.ended) this.mux.receive(bytes);
    // Let the mux flush what this produced (WINDOW grants, RESETs) into the response.
    return new Promise((resolve) => setImmediate(resolve));
  }

  goaway(): void {
    this.mux.goaway(GoawayCode.NORMAL);
    this.ended = true;
    // The GOAWAY flushes in a microtask; wake polls after it is buffered.
    queueMicrotask(() => this.downstream.wake());
  }

  close(): void {
    this.ended = true;
    this.mux.destroy();
    this.downstream.wake();
  }
}
