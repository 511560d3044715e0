/**
 * The ICE shim with real UDP sockets: a stand-in agent (a socket that answers as libjuice would)
 * behind it, and remote peers in front. What passes is byte-exact, checks with a zero tiebreaker
 * reach the agent lifted and signed, the agent's answers go out with the true source as mapped
 * address, and strangers, surplus remotes and a closed shim carry nothing. The shim in front of
 * the real libjuice, reached by Chromium over TURN-over-TLS, is in test/e2e/turn.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { SHIM_MAX_REMOTES, shimAnswer, startIceShim, type IceShim } from '../../server/webrtc/ice-shim.ts';
import { waitFor } from '../support/wait.ts';
import { attrValue, readXorMapped, signedStun as stun, xorMappedValue as xorMapped } from '../support/stun-messages.ts';

const PWD = 'agent-ice-password-0123';
const tiebreakerOf = (m: Buffer) => attrValue(m, 0x802a)!.readBigUInt64BE();

interface Peer {
  socket: dgram.Socket;
  port: number;
  got: Array<{ data: Buffer; from: dgram.RemoteInfo }>;
}

async function peer(): Promise<Peer> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const p: Peer = { socket, port: socket.address().port, got: [] };
  socket.on('message', (data, from) => p.got.push({ data, from }));
  return p;
}

describe('ICE shim (real UDP sockets)', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });
  async function setup(): Promise<{ agent: Peer; shim: IceShim }> {
    const agent = await peer();
    const shim = await startIceShim({ address: '127.0.0.1', port: agent.port }, PWD);
    closers.push(() => agent.socket.close(), () => shim.close());
    return { agent, shim };
  }
  const send = (p: Peer, m: Buffer, port: number) => p.socket.send(m, port, '127.0.0.1');

  it('other datagrams pass both ways byte-exact, in order, each remote from a socket of its own', async () => {
    const { agent, shim } = await setup();
    const a = await peer();
    const b = await peer();
    closers.push(() => a.socket.close(), () => b.socket.close());
    const dtls = (n: number) => Buffer.concat([Buffer.from([0x17, 0xfe, 0xfd]), Buffer.alloc(100 + n, n)]);
    for (let i = 0; i < 20; i++) send(a, dtls(i), shim.front.port);
    send(b, dtls(99), shim.front.port);
    await waitFor('21 datagrams at the agent', () => agent.got.length === 21);
    const fromA = agent.got.filter((g) => g.data[3] !== 99).map((g) => g.data);
    expect(fromA).toEqual([...Array(20).keys()].map(dtls));
    const sources = new Set(agent.got.map((g) => g.from.port));
    expect(sources.size).toBe(2);
    expect(sources.has(shim.front.port)).toBe(false);
    // The agent answers each source; each answer leaves by the front socket to its own remote.
    const toA = agent.got[0]!.from.port;
    const toB = agent.got.find((g) => g.data[3] === 99)!.from.port;
    agent.socket.send(dtls(1), toA, '127.0.0.1');
    agent.socket.send(dtls(2), toB, '127.0.0.1');
    await waitFor('the answers', () => a.got.length === 1 && b.got.length === 1);
    expect(a.got[0]!.data).toEqual(dtls(1));
    expect(b.got[0]!.data).toEqual(dtls(2));
    expect(a.got[0]!.from.port).toBe(shim.front.port);
  });

  it('a check with a zero tiebreaker reaches the agent as 1, signed; the answer names the remote, not the shim; other checks go no further', async () => {
    const { agent, shim } = await setup();
    const remote = await peer();
    closers.push(() => remote.socket.close());
    send(remote, stun(0x0001, [[0x0006, Buffer.from('abcd:efgh')], [0x802a, Buffer.alloc(8)], [0x0025, Buffer.alloc(0)]], PWD), shim.front.port);
    await waitFor('the check at the agent', () => agent.got.length === 1);
    const check = agent.got[0]!;
    expect(tiebreakerOf(check.data)).toBe(1n);
    expect(check.data.equals(stun(0x0001, [[0x0006, Buffer.from('abcd:efgh')], [0x802a, Buffer.from('0000000000000001', 'hex')], [0x0025, Buffer.alloc(0)]], PWD))).toBe(true);
    // libjuice answers with the source it saw: the shim's inner socket.
    agent.socket.send(stun(0x0101, [[0x0020, xorMapped('127.0.0.1', check.from.port)]], PWD), check.from.port, '127.0.0.1');
    await waitFor('the answer at the remote', () => remote.got.length === 1);
    expect(readXorMapped(remote.got[0]!.data)).toEqual({ address: '127.0.0.1', port: remote.port });
    // Any other check is dropped: signed with another key, or with a tiebreaker the agent takes
    // (a browser that reaches the agent directly must never select the shim's pair).
    const dropped = shim.dropped;
    send(remote, stun(0x0001, [[0x802a, Buffer.alloc(8)]], 'not-the-password'), shim.front.port);
    send(remote, stun(0x0001, [[0x802a, Buffer.from('149f30ebe42e6930', 'hex')]], PWD), shim.front.port);
    await waitFor('two checks dropped', () => shim.dropped === dropped + 2);
    send(remote, Buffer.from('after'), shim.front.port);
    await waitFor('the next datagram', () => agent.got.length === 2);
    expect(agent.got[1]!.data).toEqual(Buffer.from('after'));
  });

  it('strangers writing to an inner socket, remotes past the limit and a closed shim carry nothing', async () => {
    const { agent, shim } = await setup();
    const remotes = await Promise.all([...Array(SHIM_MAX_REMOTES + 2).keys()].map(() => peer()));
    closers.push(...remotes.map((r) => () => r.socket.close()));
    for (const r of remotes) send(r, Buffer.from(`hello from ${r.port}`), shim.front.port);
    await waitFor('the first remotes at the agent', () => agent.got.length === SHIM_MAX_REMOTES);
    await waitFor('two dropped', () => shim.dropped === 2);
    // A stranger who learns an inner socket's port cannot send through it.
    const stranger = await peer();
    closers.push(() => stranger.socket.close());
    const inner = agent.got[0]!.from.port;
    send(stranger, Buffer.from('injected'), inner);
    await waitFor('the stranger dropped', () => shim.dropped === 3);
    expect(remotes.every((r) => r.got.length === 0)).toBe(true);
    // Closed: the front socket is gone.
    shim.close();
    const late = await peer();
    closers.push(() => late.socket.close());
    const before = agent.got.length;
    const refused = new Promise<boolean>((resolve) => {
      late.socket.once('error', () => resolve(true));
      late.socket.connect(shim.front.port, '127.0.0.1', () => late.socket.send('after close'));
    });
    expect(await refused).toBe(true); // ICMP port unreachable: nothing listens there now
    expect(agent.got.length).toBe(before);
  });

  it('shimAnswer adds one lower-priority host candidate per IPv4 host candidate of the agent, and nothing without one', async () => {
    const agent = await peer();
    closers.push(() => agent.socket.close());
    const sdp = ['v=0', 'a=ice-pwd:' + PWD, `a=candidate:1 1 UDP 2114977791 127.0.0.1 ${agent.port} typ host`, 'a=candidate:2 1 UDP 2114977790 ::1 40000 typ host', 'a=end-of-candidates', ''].join('\r\n');
    const { sdp: out, shims } = await shimAnswer(sdp);
    closers.push(() => shims.forEach((s) => s.close()));
    expect(shims).toHaveLength(1);
    const lines = out.split('\r\n');
    expect(lines[3]).toBe(`a=candidate:1s 1 UDP ${2114977791 - (2048 << 8)} 127.0.0.1 ${shims[0]!.front.port} typ host`);
    expect(lines.filter((l) => l.startsWith('a=candidate'))).toHaveLength(3);
    expect(lines.at(-2)).toBe('a=end-of-candidates');
    // It forwards to the agent the answer named.
    const remote = await peer();
    closers.push(() => remote.socket.close());
    send(remote, Buffer.from('dtls'), shims[0]!.front.port);
    await waitFor('the datagram at the agent', () => agent.got.length === 1);
    expect((await shimAnswer('v=0\r\na=candidate:1 1 UDP 1 ::1 1 typ host\r\n')).shims).toHaveLength(0);
  });
});
