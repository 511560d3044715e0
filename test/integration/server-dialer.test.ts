/**
 * The dialer over real TCP. Every connection in this file goes to 127.0.0.1: refusals are decided
 * before any packet leaves, and the timeout case uses a loopback listener that never accepts.
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { createDialer, dial } from '../../server/exit/dialer.ts';
import { DialError } from '../../server/exit/dial-error.ts';
import type { Destination } from '../../shared/eagersocks.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import { blackhole, listen } from '../support/servers.ts';

const overrides = new Map([['blocked.test', '127.0.0.1']]);


const failure = (p: Promise<unknown>) => p.then(() => expect.unreachable('dial succeeded'), (e: unknown) => e as DialError);

describe('dialer (real TCP on loopback)', () => {
  it('connects with allowPrivate, through a test-resolve name, and carries bytes', async () => {
    const server = await listen((s) => s.end('hi'));
    try {
      const socket = await dial({ type: 'domain', host: 'Blocked.Test', port: server.port }, { allowPrivate: true, overrides, timeoutMs: 2000 });
      expect(socket).toBeInstanceOf(net.Socket);
      const text = await new Promise<string>((resolve) => {
        let got = '';
        socket.setEncoding('utf8').on('data', (d: string) => (got += d)).on('end', () => resolve(got));
      });
      expect(text).toBe('hi');
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('refuses loopback in every spelling with 0x02, before connecting', async () => {
    const server = await listen((s) => s.end());
    try {
      const strict = createDialer({ allowPrivate: false, overrides, timeoutMs: 2000 });
      const destinations: Destination[] = [
        { type: 'ipv4', host: '127.0.0.1', port: server.port },
        { type: 'ipv6', host: '::ffff:127.0.0.1', port: server.port },
        { type: 'ipv6', host: '::ffff:7f00:1', port: server.port },
        { type: 'ipv6', host: '::1', port: server.port },
        { type: 'domain', host: 'blocked.test', port: server.port }, // --resolve blocked.test=127.0.0.1
        { type: 'domain', host: 'localhost', port: server.port }, // /etc/hosts
        { type: 'domain', host: '127.1', port: server.port }, // the resolver reads it as 127.0.0.1
      ];
      for (const d of destinations) {
        const err = await failure(strict(d));
        expect(err, d.host).toBeInstanceOf(DialError);
        expect(err.resetCode, d.host).toBe(ResetCode.POLICY);
        expect(err.reason, d.host).toBe('policy');
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(server.connections.length).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('maps a refused connection to 0x01 and an unresolvable name to 0x08', async () => {
    const gone = await listen(() => {});
    await gone.close();
    const refused = await failure(dial({ type: 'ipv4', host: '127.0.0.1', port: gone.port }, { allowPrivate: true, overrides, timeoutMs: 2000 }));
    expect(refused).toMatchObject({ resetCode: ResetCode.UNREACHABLE, reason: 'unreachable' });
    // An injected resolver: no DNS query leaves the machine.
    const lookupAll = () => Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
    const unknown = await failure(dial({ type: 'domain', host: 'nowhere.test', port: 80 }, { allowPrivate: false, overrides, timeoutMs: 2000, lookupAll }));
    expect(unknown).toMatchObject({ resetCode: ResetCode.NAME_NOT_RESOLVED, reason: 'resolve' });
  });

  it('tries the next allowed address when one refuses', async () => {
    const server = await listen((s) => s.end()); // on 127.0.0.1 only
    try {
      // Both addresses are loopback, hence allowPrivate; nothing listens on 127.0.0.2 at that port.
      const lookupAll = () => Promise.resolve(['127.0.0.2', '127.0.0.1']);
      const socket = await dial({ type: 'domain', host: 'two.test', port: server.port }, { allowPrivate: true, overrides: new Map(), timeoutMs: 2000, lookupAll });
      expect(socket.remoteAddress).toBe('127.0.0.1');
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('gives up with 0x03 when the connect never completes, and when resolving hangs', async () => {
    const hole = await blackhole();
    try {
      const started = Date.now();
      const err = await failure(dial({ type: 'ipv4', host: '127.0.0.1', port: hole.port }, { allowPrivate: true, overrides, timeoutMs: 300 }));
      expect(err).toMatchObject({ resetCode: ResetCode.TIMEOUT, reason: 'timeout' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      hole.close();
    }
    const lookupAll = () => new Promise<string[]>(() => {});
    const hung = await failure(dial({ type: 'domain', host: 'slow.test', port: 80 }, { allowPrivate: false, overrides, timeoutMs: 100, lookupAll }));
    expect(hung).toMatchObject({ resetCode: ResetCode.TIMEOUT, reason: 'timeout' });
  });
});
