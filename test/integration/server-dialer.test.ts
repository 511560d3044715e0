import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { createDialer, DialError } from '../../server/edge/dialer.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import { blackhole, listen } from '../support/servers.ts';

const overrides = new Map([['blocked.test', '127.0.0.1']]);

describe('dialer (real TCP on loopback)', () => {
  it('dials an allowed destination, and a loopback one only with allowPrivate', async () => {
    const server = await listen((s) => s.end('hi'));
    try {
      const open = createDialer({ allowPrivate: true, overrides, timeoutMs: 2000 });
      const socket = await open({ type: 'domain', host: 'blocked.test', port: server.port });
      expect(socket).toBeInstanceOf(net.Socket);
      socket.destroy();
      const strict = createDialer({ allowPrivate: false, overrides, timeoutMs: 2000 });
      for (const host of ['127.0.0.1', 'blocked.test', 'localhost']) {
        const err = await strict({ type: host.includes('.') && !/^\d/.test(host) ? 'domain' : 'ipv4', host, port: server.port } as never).catch((e) => e);
        expect(err).toBeInstanceOf(DialError);
        expect(err.resetCode, host).toBe(ResetCode.POLICY);
      }
      expect(server.connections.length).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('maps a refused connection to 0x01 and a dial that never completes to 0x03', async () => {
    const gone = await listen(() => {});
    await gone.close();
    const dial = createDialer({ allowPrivate: true, overrides, timeoutMs: 300 });
    const refused = await dial({ type: 'ipv4', host: '127.0.0.1', port: gone.port }).catch((e) => e);
    expect(refused.resetCode).toBe(ResetCode.UNREACHABLE);
    const hole = await blackhole();
    try {
      const timedOut = await dial({ type: 'ipv4', host: '127.0.0.1', port: hole.port }).catch((e) => e);
      expect(timedOut).toBeInstanceOf(DialError);
      expect(timedOut.resetCode).toBe(ResetCode.TIMEOUT);
    } finally {
      hole.close();
    }
  });
});
