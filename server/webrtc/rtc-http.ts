/**
 * POST <path>rtc (PROTOCOL.md §4.1): `{"sdp": offer}` in, `{"type": "answer", "sdp": …}` out; 400
 * for what is no offer, 503 when the edge, or the client's share of it, takes no more sessions. Only admitted requests get here
 * (routes.ts answers the rest with the cover).
 */
import type http from 'node:http';
import { readBody, send } from '../common/http-util.ts';
import type { RtcEndpoint } from './rtc-endpoint.ts';

/** An offer with every candidate in it is a few KiB; a larger body is no offer. */
const MAX_OFFER_BYTES = 64 * 1024;

/** `clientKey`: whom a request counts against (the edge's client address: a trusted proxy's source, an IPv6 /64). */
export function rtcHandler(rtc: RtcEndpoint, clientKey: (req: http.IncomingMessage) => string): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  return async (req, res) => {
    const body = await readBody(req, MAX_OFFER_BYTES);
    let sdp: unknown;
    try {
      sdp = body && (JSON.parse(new TextDecoder().decode(body)) as { sdp?: unknown }).sdp;
    } catch {
      sdp = null;
    }
    if (typeof sdp !== 'string' || !sdp.startsWith('v=0')) return send(res, 400, 'an offer is JSON {"sdp": "v=0…"}\n');
    const answer = await rtc.answer(sdp, clientKey(req)).catch(() => undefined);
    if (answer === undefined) return send(res, 400, 'the offer could not be answered\n');
    if (answer === null) return send(res, 503, 'no room for another session\n');
    send(res, 200, JSON.stringify({ type: 'answer', sdp: answer }), { 'content-type': 'application/json', 'cache-control': 'no-store' });
  };
}
