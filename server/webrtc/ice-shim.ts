/**
 * A second host candidate in front of the edge's libjuice agent, so that a browser checking over
 * TURN-over-TCP/TLS gets through (stun-rewrite.ts says what libjuice gets wrong). The shim is a
 * NAT of one session: datagrams to its front socket go on to the agent from a socket of their
 * own per remote address, and the agent's answers go back out of the front socket. It only
 * edits STUN checks whose tiebreaker is 0 and the mapped address of the agent's answers to them;
 * DTLS and everything else pass as they are. Every other connectivity check is dropped, so the
 * shim's pair succeeds only for a browser whose checks the agent would refuse: over a UDP TURN
 * relay the browser reaches the agent directly and the shim carries nothing.
 */
import dgram from 'node:dgram';
import { isBindingRequest, liftZeroTiebreaker, rewriteMappedAddress, type Address } from './stun-rewrite.ts';

/** Remote addresses one session's shim forwards for (a browser's relay candidates, one per TURN server and transport): more are dropped. */
export const SHIM_MAX_REMOTES = 8;
/** Datagrams waiting in a socket's send queue above which more are dropped (UDP may drop; memory stays bounded against a flood). */
export const SHIM_MAX_QUEUED = 256;

export interface IceShim {
  /** The front socket's address: offered to the browser as a host candidate. */
  readonly front: Address;
  /** Datagrams dropped so far: beyond the remote limit, or with a full send queue. */
  readonly dropped: number;
  close(): void;
}

function bound(address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, address, () => {
      s.off('error', reject);
      s.on('error', () => {}); // ICMP unreachable and the like: UDP carries on
      resolve(s);
    });
  });
}

/** Told each datagram the shims forward: `in` toward the agent, `out` from it. */
export type ShimCount = (direction: 'in' | 'out', bytes: number) => void;

/** A shim on `agent.address` (IPv4) for the agent at `agent`, whose ice-pwd is `localPassword`. */
export async function startIceShim(agent: Address, localPassword: string, count: ShimCount = () => {}): Promise<IceShim> {
  const front = await bound(agent.address);
  const remotes = new Map<string, Promise<dgram.Socket | null>>();
  let dropped = 0;
  let closed = false;
  const send = (s: dgram.Socket, m: Uint8Array, to: Address) => {
    if (closed || s.getSendQueueCount() >= SHIM_MAX_QUEUED) return void dropped++;
    s.send(m, to.port, to.address);
  };

  const inner = (remote: Address): Promise<dgram.Socket | null> => {
    const key = `${remote.address}:${remote.port}`;
    let s = remotes.get(key);
    if (!s) {
      if (remotes.size >= SHIM_MAX_REMOTES) return Promise.resolve(null);
      s = bound(agent.address).then((socket) => {
        if (closed) return socket.close(), null;
        socket.on('message', (m, from) => {
          if (from.port !== agent.port || from.address !== agent.address) return void dropped++;
          count('out', m.length);
          send(front, rewriteMappedAddress(m, localPassword, remote) ?? m, remote);
        });
        return socket;
      }, () => null);
      remotes.set(key, s);
    }
    return s;
  };

  front.on('message', (m, from) => {
    // Only a check the agent would refuse passes the shim, lifted: any other check is dropped, so
    // a browser that can reach the agent directly (a UDP TURN relay) never selects the shim's pair.
    const out = isBindingRequest(m) ? liftZeroTiebreaker(m, localPassword) : m;
    if (!out) return void dropped++;
    const remote = { address: from.address, port: from.port };
    void inner(remote).then((socket) => {
      if (!socket) return void dropped++;
      count('in', m.length);
      send(socket, out, agent);
    });
  });

  const { port } = front.address();
  return {
    front: { address: agent.address, port },
    get dropped() {
      return dropped;
    },
    close() {
      if (closed) return;
      closed = true;
      front.close();
      for (const s of remotes.values()) void s.then((socket) => socket?.close());
      remotes.clear();
    },
  };
}

/** Below the agent's own candidate (local preference lower, RFC 8445 §5.1.2.1), so a browser takes the agent directly where it can. */
const SHIM_PRIORITY_BELOW = 2048 << 8;

/**
 * `answer` (libdatachannel's, candidates gathered) with a shim's candidate after each of the
 * agent's IPv4 host candidates, and the shims to close with the peer connection.
 */
export async function shimAnswer(answer: string, count?: ShimCount): Promise<{ sdp: string; shims: IceShim[] }> {
  const password = /^a=ice-pwd:(\S+)\r?$/m.exec(answer)?.[1];
  const hosts = [...answer.matchAll(/^a=candidate:(\S+) 1 UDP (\d+) (\d{1,3}(?:\.\d{1,3}){3}) (\d+) typ host(?=\r?$)/gim)];
  if (!password || hosts.length === 0) return { sdp: answer, shims: [] };
  const shims: IceShim[] = [];
  const lines: string[] = [];
  try {
    for (const [, foundation, priority, address, port] of hosts) {
      const shim = await startIceShim({ address: address!, port: Number(port) }, password, count);
      shims.push(shim);
      lines.push(`a=candidate:${foundation}s 1 UDP ${Math.max(1, Number(priority) - SHIM_PRIORITY_BELOW)} ${shim.front.address} ${shim.front.port} typ host`);
    }
  } catch (e) {
    for (const s of shims) s.close();
    throw e;
  }
  const last = hosts.at(-1)!;
  const at = last.index! + last[0].length;
  const eol = answer.includes('\r\n') ? '\r\n' : '\n';
  return { sdp: answer.slice(0, at) + lines.map((l) => eol + l).join('') + answer.slice(at), shims };
}
