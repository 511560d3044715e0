/**
 * Errors by layer. Each layer of the protocol has one class and its own codes, so a caller
 * branches on the class and `code`, never on message text. Three kinds are kept apart:
 * - protocol errors: the peer's bytes broke the wire contract (answer with GOAWAY/close/400);
 * - state errors: a local request the connection's state refuses now (closed, going away, full);
 * - UsageError: the caller broke an API contract — a bug here, never the peer's doing.
 * `isProtocolError` is the one place that says which codes are the peer's fault (as js-libp2p
 * yamux keeps one set of protocol errors).
 */
export type ErrorLayer = 'remux' | 'eagersocks' | 'meek' | 'h3' | 'link' | 'proxy-protocol' | 'settings' | 'usage';

export abstract class PassageError<Code extends string = string> extends Error {
  abstract readonly layer: ErrorLayer;
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** ReMux (PROTOCOL.md §2). */
export type RemuxErrorCode =
  | 'FRAME_MALFORMED' // a control payload breaks §2 (empty, or a known type of the wrong length)
  | 'FRAME_TOO_LONG' // a frame over the largest payload
  | 'CONTROL_FLOOD' // the peer forced more control frames (or unanswered refusals) than the budget holds
  | 'MUX_CLOSED' // state: the connection is gone
  | 'GOAWAY' // state: the connection is going away, no new streams
  | 'STREAM_LIMIT'; // state: this side's stream limit is reached
export class RemuxError extends PassageError<RemuxErrorCode> {
  readonly layer = 'remux';
}

/** EagerSocks destination headers (§3). */
export class AddressError extends PassageError<'ADDRESS_MALFORMED'> {
  readonly layer = 'eagersocks';
}

/** meek (§1): header and seq rules on the edge, final answers and retries on the client. */
export type MeekErrorCode =
  | 'HEADER' // a meek header missing or malformed (HTTP 400)
  | 'SEQ' // a seq out of order (HTTP 409)
  | 'GONE' // the session ended or is unknown (HTTP 410)
  | 'WAIT' // a pipelined upload waited too long for an earlier seq (HTTP 503: the client retries it)
  | 'HTTP' // the edge answered a final status the client cannot continue after
  | 'RETRIES' // the edge did not answer within the retries
  | 'NO_V2'; // the edge answered a meek-v2 session's first request as meek v1
export class MeekError extends PassageError<MeekErrorCode> {
  readonly layer = 'meek';
}

/** HTTP/3 and WebTransport codecs (§4). */
export type H3ErrorCode = 'VARINT' | 'FRAME' | 'SETTINGS' | 'QPACK' | 'HUFFMAN' | 'MESSAGE';
export class H3CodecError extends PassageError<H3ErrorCode> {
  readonly layer = 'h3';
}

/** The WebTransport front ↔ edge link's session question and answer. */
export class LinkError extends PassageError<'LINK_MALFORMED'> {
  readonly layer = 'link';
}

/** PROXY protocol v2 headers (a load balancer's, in front of the edge). */
export class ProxyProtocolError extends PassageError<'MALFORMED' | 'UNSUPPORTED'> {
  readonly layer = 'proxy-protocol';
}

/** Settings a person typed or imported that Passage cannot honour; the message is for them. */
export class SettingsError extends PassageError<'CONFIG_LINK' | 'INVALID_SETTING'> {
  readonly layer = 'settings';
}

/** A caller broke an API's contract: a bug in the caller, not something the peer did. */
export class UsageError extends PassageError<'USAGE'> {
  readonly layer = 'usage';
  constructor(message: string) {
    super('USAGE', message);
  }
}

const STATE_CODES: ReadonlySet<string> = new Set<RemuxErrorCode>(['MUX_CLOSED', 'GOAWAY', 'STREAM_LIMIT']);

/** The peer broke the wire contract (as opposed to a local state refusal or a caller's bug). */
export function isProtocolError(e: unknown): e is PassageError {
  if (!(e instanceof PassageError)) return false;
  if (e instanceof RemuxError) return !STATE_CODES.has(e.code);
  if (e instanceof MeekError) return e.code === 'HEADER' || e.code === 'SEQ';
  if (e instanceof ProxyProtocolError) return e.code === 'MALFORMED';
  return e instanceof AddressError || e instanceof H3CodecError || e instanceof LinkError;
}
