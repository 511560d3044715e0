/**
 * The edge's WebRTC peer (node-datachannel: measured fastest through a TURN relay, docs/PLATFORM.md).
 * A client posts its offer (all its candidates in it: relay candidates from the TURN servers
 * discovery named) and gets the answer; the data channel it opened, `remux`, then carries a ReMux
 * byte stream into the same exit mux as meek and WebTransport. The edge's own candidates are its
 * host addresses (or the one `--rtc-address` names): the TURN server relays to them, and the
 * edge must answer from the address the TURN server's permission names.
 */
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { packMessages } from '../../shared/bytes.ts';
import type { ExitBudget, ExitEvents } from '../exit/exit-mux.ts';
import { carrySession, type CarriedSession } from '../exit/carried-session.ts';
import type { Dial } from '../exit/dialer.ts';
import { shimAnswer, type IceShim, type ShimCount } from './ice-shim.ts';

/** What one data-channel message holds at most (libdatachannel's default limit, advertised in the SDP). */
const MAX_MESSAGE = 64 * 1024;
/** While a session waits for its data channel to drain, the channel's buffered amount is looked at this often (carried-session.ts says why). */
const DRAIN_CHECK_MS = 50;
/** A peer whose data channel has not opened by then is dropped. */
const OPEN_DEADLINE_MS = 15_000;
/** Gathering the edge's own candidates takes milliseconds on a host; past this the answer goes with what it has. */
const GATHER_DEADLINE_MS = 2000;

export interface RtcEndpointOptions {
  maxStreams: number;
  budget: ExitBudget;
  /** Unsent bytes toward the client above which the mux pauses (the session's downstream share). */
  downstreamLimit: number;
  dial: Dial;
  /** The one address the peer binds and offers as its candidate; null: every interface. */
  bindAddress: string | null;
  events: ExitEvents;
  /** Whether another session may open now for `client` (its key, client-address.ts): the edge's shared limits and the client's share, which counts `sessionsOf(client)`. */
  admit(client: string): boolean;
  /** Counts what the ICE shims carry. */
  shimBytes: ShimCount;
  onSessionOpen(): void;
  onSessionClose(): void;
}

export interface RtcEndpoint {
  /** The answer SDP for `client`'s offer, or null when the edge (or the client's share) takes no more sessions now. */
  answer(offerSdp: string, client: string): Promise<string | null>;
  readonly sessions: number;
  /** Peers `client` holds now, connected or still connecting (each counts in its share until closed). */
  sessionsOf(client: string): number;
  /** Draining: quiet streams end, and a session left without streams is closed (the client falls back). */
  closeQuiet(quietMs: number): void;
  close(): void;
}

export function createRtcEndpoint(o: RtcEndpointOptions): RtcEndpoint {
  const peers = new Set<RTCPeerConnection>();
  const open = new Set<CarriedSession>();
  const perClient = new Map<string, number>();
  const serve = (pc: RTCPeerConnection) => {
    let opened = false;
    const timer = setTimeout(() => opened || pc.close(), OPEN_DEADLINE_MS);
    pc.ondatachannel = (ev) => {
      const channel = ev.channel;
      if (channel.label !== 'remux' || opened) return channel.close();
      opened = true;
      clearTimeout(timer);
      channel.binaryType = 'arraybuffer';
      o.onSessionOpen();
      const session = carrySession(
        {
          get writable() {
            return channel.readyState === 'open';
          },
          send: (chunks) => {
            // Each data-channel message costs SCTP and the browser a message's work: the flush's
            // frames go packed into as few messages as fit, not one per frame header and payload.
            for (const message of packMessages(chunks, MAX_MESSAGE)) channel.send(message as Uint8Array<ArrayBuffer>);
          },
          get backlog() {
            return channel.bufferedAmount;
          },
          close: () => channel.close(),
          drainCheckMs: DRAIN_CHECK_MS,
        },
        o,
      );
      channel.bufferedAmountLowThreshold = o.downstreamLimit / 2;
      channel.onbufferedamountlow = () => session.drained();
      open.add(session);
      channel.onmessage = (m) => session.receive(new Uint8Array(m.data as ArrayBuffer));
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        session.end();
        open.delete(session);
        o.onSessionClose();
        pc.close();
      };
      channel.onclose = end;
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') end();
      };
    };
    pc.onconnectionstatechange = () => {
      if (!opened && (pc.connectionState === 'failed' || pc.connectionState === 'closed')) clearTimeout(timer);
    };
  };

  return {
    async answer(offerSdp, client) {
      if (!o.admit(client)) return null;
      // node-datachannel takes libdatachannel's own options beside the standard ones.
      const pc = new RTCPeerConnection({ iceServers: [], ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}) } as RTCConfiguration);
      peers.add(pc);
      perClient.set(client, (perClient.get(client) ?? 0) + 1);
      let shims: IceShim[] = [];
      const origClose = pc.close.bind(pc);
      pc.close = () => {
        if (peers.delete(pc)) {
          const left = perClient.get(client)! - 1;
          if (left > 0) perClient.set(client, left);
          else perClient.delete(client);
        }
        for (const s of shims) s.close();
        origClose();
      };
      serve(pc);
      try {
        await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
        await pc.setLocalDescription(await pc.createAnswer());
        await new Promise<void>((resolve) => {
          if (pc.iceGatheringState === 'complete') return resolve();
          const t = setTimeout(resolve, GATHER_DEADLINE_MS);
          pc.onicegatheringstatechange = () => {
            if (pc.iceGatheringState === 'complete') {
              clearTimeout(t);
              resolve();
            }
          };
        });
        // TURN over TCP/TLS reaches libjuice only through a shim (ice-shim.ts says why).
        const shimmed = await shimAnswer(pc.localDescription!.sdp, o.shimBytes);
        shims = shimmed.shims;
        if (!peers.has(pc)) for (const s of shims) s.close(); // closed while the shims started
        return shimmed.sdp;
      } catch (e) {
        pc.close();
        throw e;
      }
    },
    get sessions() {
      return peers.size;
    },
    sessionsOf: (client) => perClient.get(client) ?? 0,
    closeQuiet(quietMs) {
      for (const session of open) session.closeQuiet(quietMs);
    },
    close() {
      for (const pc of [...peers]) pc.close();
    },
  };
}
