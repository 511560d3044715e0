/**
 * Typed errors of the protocol core. Every failure the core reports is a ProtocolError with a
 * machine-readable code, so callers branch on `code`, never on message text.
 */
export type ProtocolErrorCode =
  | 'FRAME_MALFORMED' // a ReMux frame or control payload breaks §2
  | 'ADDRESS_MALFORMED' // an EagerSocks header breaks §3
  | 'WINDOW_EXCEEDED' // a peer sent beyond its flow-control window
  | 'DATA_AFTER_FIN' // a peer sent data on a stream it had finished
  | 'STREAM_LIMIT' // too many streams
  | 'STREAM_CLOSED' // write on a stream that can no longer send
  | 'MUX_CLOSED' // the connection is gone
  | 'GOAWAY' // the peer asked for no new streams
  | 'MEEK_HEADER' // a meek header is missing or malformed (HTTP 400)
  | 'MEEK_SEQ' // a seq out of order (HTTP 409)
  | 'MEEK_GONE' // the session ended or is unknown (HTTP 410)
  | 'MEEK_HTTP' // a final HTTP status from the server
  | 'MEEK_RETRIES' // retries exhausted
  | 'TIMEOUT';

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

export function isProtocolError(e: unknown, code?: ProtocolErrorCode): e is ProtocolError {
  return e instanceof ProtocolError && (code === undefined || e.code === code);
}
