/**
 * WebRTC peers for the worker (lib/peer-port.ts), wherever a document can hold them: Chromium's
 * offscreen document (reason WEB_RTC), Firefox's event page itself. Each peer is relay-only — the
 * only path it can take is through the TURN servers discovery named, which is the point: on the
 * wire it is a relayed call — with one ordered, reliable data channel, `remux`, whose bytes it
 * passes to and from the worker over the peer's own port. It keeps the data channel's buffer
 * bounded and tells the worker, in `ack`s, how much has left it; the worker bounds what it hands
 * over by those.
 */
import { packMessages } from '../../shared/bytes.ts';
import type { ControlReply, ControlRequest, PeerEvent, PeerRequest } from './peer-port.ts';

/** Candidates are gathered by then or not at all (a TURN allocation is one or two round trips). */
const GATHER_DEADLINE_MS = 2500;
/**
 * Once one relay candidate is in, the others get this long: one of several TURN servers that does
 * not answer (its port blocked) would otherwise hold the offer until its STUN retransmissions give
 * up, seconds past the handshake's 3 s.
 */
const AFTER_FIRST_RELAY_MS = 300;
/** Acks go out once the channel's buffer is below this. */
const LOW_WATER = 256 * 1024;
/** What one data-channel message may hold at most (the edge's libdatachannel accepts 64 KiB). */
const MAX_MESSAGE = 64 * 1024;

/** Serves offers asked on `control`; answers a function that closes every peer it made. */
export function hostPeers(control: MessagePort): () => void {
  const peers = new Set<RTCPeerConnection>();
  control.onmessage = (e: MessageEvent) => void serve(e.data as ControlRequest, control, peers);
  return () => {
    for (const pc of peers) pc.close();
    peers.clear();
    control.close();
  };
}

function gathered(pc: RTCPeerConnection): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timers = [setTimeout(done, GATHER_DEADLINE_MS)];
    function done() {
      for (const t of timers) clearTimeout(t);
      resolve();
    }
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate?.type === 'relay' && timers.length === 1) timers.push(setTimeout(done, AFTER_FIRST_RELAY_MS));
    });
  });
}

async function serve(request: ControlRequest, from: MessagePort, peers: Set<RTCPeerConnection>): Promise<void> {
  if (request.t !== 'offer') return;
  const reply = (r: ControlReply, transfer: Transferable[] = []) => from.postMessage(r, transfer);
  const pc = new RTCPeerConnection({ iceServers: request.iceServers, iceTransportPolicy: 'relay' });
  peers.add(pc);
  try {
    const dc = pc.createDataChannel('remux', { ordered: true });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const sdp = pc.localDescription?.sdp ?? '';
    if (!/ typ relay/.test(sdp)) throw new Error('the TURN server gave no relay address');
    const channel = new MessageChannel();
    carry(pc, dc, channel.port1, peers);
    reply({ t: 'offered', id: request.id, sdp }, [channel.port2]);
  } catch (e) {
    pc.close();
    peers.delete(pc);
    reply({ t: 'failed', id: request.id, why: (e as Error).message });
  }
}

/** Joins the data channel to the worker's port. */
function carry(pc: RTCPeerConnection, dc: RTCDataChannel, port: MessagePort, peers: Set<RTCPeerConnection>): void {
  const event = (e: PeerEvent, transfer: Transferable[] = []) => port.postMessage(e, transfer);
  let ended = false;
  const end = (why: string) => {
    if (ended) return;
    ended = true;
    event({ t: 'closed', why });
    pc.close();
    peers.delete(pc);
    port.close();
  };
  let unacked = 0;
  const ack = () => {
    if (unacked === 0 || dc.bufferedAmount > LOW_WATER) return;
    event({ t: 'ack', n: unacked });
    unacked = 0;
  };
  dc.binaryType = 'arraybuffer';
  dc.bufferedAmountLowThreshold = LOW_WATER;
  dc.onbufferedamountlow = ack;
  dc.onopen = () => event({ t: 'open' });
  dc.onmessage = (m: MessageEvent) => {
    const data = m.data as ArrayBuffer;
    port.postMessage(data, [data]);
  };
  dc.onclose = () => end('the data channel closed');
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') end(`the connection ${pc.connectionState}`);
  };
  port.onmessage = (e: MessageEvent) => {
    const data = e.data as ArrayBuffer | PeerRequest;
    if (data instanceof ArrayBuffer) {
      if (dc.readyState !== 'open') return;
      const max = Math.min(MAX_MESSAGE, pc.sctp?.maxMessageSize || MAX_MESSAGE);
      for (const message of packMessages([new Uint8Array(data)], max)) dc.send(message as Uint8Array<ArrayBuffer>);
      unacked += data.byteLength;
      // Acks are batched: one for everything sent in this task, once the buffer is low.
      queueMicrotask(ack);
    } else if (data.t === 'answer') {
      pc.setRemoteDescription({ type: 'answer', sdp: data.sdp }).catch((err: Error) => end(`the edge's answer was refused: ${err.message}`));
    } else if (data.t === 'close') end('closed');
  };
}
