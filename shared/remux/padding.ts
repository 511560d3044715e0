/**
 * Which frames the mux pads (PROTOCOL.md §2): the first few data frames of every stream, each
 * topped up with a PADDING frame to a random size — the frames that carry the inner handshake,
 * whose sizes are what gives a tunnelled TLS connection away (sing-box AnyTLS pads its first 8
 * packets to 500–1000 bytes by default). Bulk data is left alone: its frames are large already.
 */
export interface PaddingPolicy {
  /** Data frames padded per stream and direction. */
  frames: number;
  /** The size on the wire to pad a frame up to. */
  target(): number;
  /**
   * Opener: hold a stream's first bytes that are not a TLS record for one cover round trip
   * (COVER, answered by COVER_REPLY) at most this long; 0: never. A tunnelled TLS connection
   * shows its inner handshake as an extra round trip before the request (Xue et al.: direction
   * and timing alone separate it); a plain one given the same round trip looks the same.
   */
  coverHoldMs: number;
}

/** Long enough for a reply over a slow meek path; a peer that never answers costs a stream this once. */
export const COVER_HOLD_MS = 1000;

export const PADDED_FRAMES = 8;
export const PAD_TO_MIN = 500;
export const PAD_TO_MAX = 1000;

export function defaultPadding(random: () => number): PaddingPolicy {
  return {
    frames: PADDED_FRAMES,
    coverHoldMs: COVER_HOLD_MS,
    target: () => PAD_TO_MIN + Math.floor(Math.min(Math.max(random(), 0), 0.999999) * (PAD_TO_MAX - PAD_TO_MIN + 1)),
  };
}
