/**
 * A meek client's body sizes (PROTOCOL.md §1): the largest response it accepts (sent as
 * X-Meek-Max-Body) and the largest upload it may send now — 64 KiB until an answer told the
 * server's own max, then the smaller of the two. Both client sessions, v1 and v2, use it.
 */
import { DEFAULT_SERVER_MAX_BODY, INITIAL_UPLOAD_LIMIT, MAX_MAX_BODY, MIN_MAX_BODY } from './headers.ts';

export class BodyLimits {
  /** Sent as X-Meek-Max-Body; clamped to 1024 … 16 MiB (the edge answers 400 below 1024, and caps absurd ones anyway). */
  readonly acceptMaxBody: number;
  private serverMaxBody: number | null = null;

  constructor(acceptMaxBody?: number) {
    const accept = Math.floor(acceptMaxBody ?? DEFAULT_SERVER_MAX_BODY);
    this.acceptMaxBody = Math.min(Math.max(Number.isFinite(accept) ? accept : DEFAULT_SERVER_MAX_BODY, MIN_MAX_BODY), MAX_MAX_BODY);
  }

  /** An answer's X-Meek-Max-Body: what no conforming edge sends (below 1024, NaN) is ignored, what nobody should buffer is capped. */
  learn(serverMaxBody: number | null): void {
    if (serverMaxBody !== null && serverMaxBody >= MIN_MAX_BODY) this.serverMaxBody = Math.min(Math.floor(serverMaxBody), MAX_MAX_BODY);
  }

  /** The largest upload per request right now. */
  get upload(): number {
    return this.serverMaxBody === null ? INITIAL_UPLOAD_LIMIT : Math.min(this.acceptMaxBody, this.serverMaxBody);
  }
}
