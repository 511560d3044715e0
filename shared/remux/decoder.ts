/**
 * Incremental ReMux decoder. Input may be split at any byte boundary. Data payloads are handed
 * out as views into the input chunks — a frame that spans chunks arrives as several pieces, so
 * nothing is copied. Control frames (small, parsed as a whole) are the only thing assembled.
 */
import { RemuxError } from '../errors.ts';
import { CONTROL_STREAM, HEADER_LENGTH, MAX_PAYLOAD } from './frame.ts';

export interface FrameSink {
  /** A piece of a data frame. `offset` is where it starts in the frame; FIN is length 0 (one call, empty data). */
  data(stream: number, length: number, offset: number, piece: Uint8Array): void;
  /** A whole control payload (stream 0). */
  control(payload: Uint8Array): void;
  /** True once the receiver is gone: the rest of the chunk is not decoded (a flood ends cheaply). */
  stopped?(): boolean;
}

export class FrameDecoder {
  private readonly header = new Uint8Array(HEADER_LENGTH);
  private headerFill = 0;
  private stream = 0;
  private length = 0;
  /** Bytes of the current frame's payload already handed out. */
  private offset = 0;
  private inFrame = false;
  private control: Uint8Array | null = null;

  /** True when the decoder sits on a frame boundary (nothing partial is held). */
  get idle(): boolean {
    return !this.inFrame && this.headerFill === 0;
  }

  push(chunk: Uint8Array, sink: FrameSink): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.inFrame && sink.stopped?.()) return;
      if (!this.inFrame) {
        const need = HEADER_LENGTH - this.headerFill;
        if (this.headerFill === 0 && chunk.length - at >= HEADER_LENGTH) {
          this.begin((chunk[at]! << 8) | chunk[at + 1]!, (chunk[at + 2]! << 8) | chunk[at + 3]!);
          at += HEADER_LENGTH;
        } else {
          const take = Math.min(need, chunk.length - at);
          this.header.set(chunk.subarray(at, at + take), this.headerFill);
          this.headerFill += take;
          at += take;
          if (this.headerFill < HEADER_LENGTH) return;
          this.headerFill = 0;
          const h = this.header;
          this.begin((h[0]! << 8) | h[1]!, (h[2]! << 8) | h[3]!);
        }
        if (this.length === 0) {
          this.inFrame = false;
          if (this.stream === CONTROL_STREAM) throw new RemuxError('FRAME_MALFORMED', 'empty control frame');
          sink.data(this.stream, 0, 0, chunk.subarray(at, at));
          continue;
        }
        if (at === chunk.length) return; // the payload starts in the next chunk
      }
      const take = Math.min(this.length - this.offset, chunk.length - at);
      const piece = chunk.subarray(at, at + take);
      at += take;
      if (this.stream === CONTROL_STREAM) {
        if (this.offset === 0 && take === this.length) {
          this.offset = this.length;
          this.inFrame = false;
          sink.control(piece);
          continue;
        }
        this.control ??= new Uint8Array(this.length);
        this.control.set(piece, this.offset);
        this.offset += take;
        if (this.offset === this.length) {
          const whole = this.control;
          this.control = null;
          this.inFrame = false;
          sink.control(whole);
        }
        continue;
      }
      const offset = this.offset;
      this.offset += take;
      if (this.offset === this.length) this.inFrame = false;
      sink.data(this.stream, this.length, offset, piece);
    }
  }

  private begin(stream: number, length: number): void {
    // The u16 fields cannot exceed MAX_PAYLOAD; the check documents the bound the buffers rely on.
    if (length > MAX_PAYLOAD) throw new RemuxError('FRAME_TOO_LONG', 'frame too long');
    this.stream = stream;
    this.length = length;
    this.offset = 0;
    this.inFrame = true;
  }
}
