/**
 * Certificate rotation of the WebTransport endpoint, in process with a clock the test moves: the
 * next certificate is advertised ahead of expiry without disturbing the front, and at expiry the
 * front is restarted on it (same port), advertising what it now serves.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sessionBudget } from '../../server/edge/session-budget.ts';
import { createLogger } from '../../server/common/log.ts';
import { createDialer } from '../../server/exit/dialer.ts';
import { startWebTransport, type RunningWebTransport } from '../../server/webtransport/webtransport-edge.ts';
import { RENEW_BEFORE_MS, VALIDITY_MS } from '../../server/webtransport/certificates.ts';

const DAY = 24 * 60 * 60 * 1000;
const noop = () => undefined;
let running: RunningWebTransport | null = null;
afterEach(async () => {
  await running?.close();
  running = null;
});

describe('WebTransport certificate rotation', () => {
  it('advertises the next certificate before expiry and restarts the front on it at expiry', async () => {
    const clock = { t: Date.now() };
    running = await startWebTransport({
      host: '127.0.0.1',
      port: 0,
      advertise: null,
      path: '/',
      tls: null,
      configDir: mkdtempSync(path.join(tmpdir(), 'passage-rotation-')),
      maxSessions: 4,
      maxStreams: 4,
      budget: { ...sessionBudget(32 << 20, 262144), admitStream: () => true, underPressure: () => false, track: () => noop },
      downstreamLimit: 1 << 20,
      now: () => clock.t,
      dial: createDialer({ allowPrivate: false, overrides: new Map(), timeoutMs: 1000 }),
      events: { onBytes: noop, onStreamOpen: noop, onStreamClose: noop, onDialError: noop, onReset: noop, onProtocolError: noop },
      decide: () => 200,
      onSessionOpen: noop,
      onSessionClose: noop,
      logger: createLogger('silent', 'test'),
    });
    const first = running.discovery();
    expect(first.certificateHashes).toHaveLength(1);
    const [current] = first.certificateHashes;
    const pid = running.front.pid;
    expect(pid).not.toBeNull();

    // Nothing to do while the certificate is young.
    clock.t += DAY;
    expect(await running.rotate()).toBe(false);
    expect(running.discovery().certificateHashes).toEqual([current]);

    // Inside the renewal window: the next one is made and advertised; the front keeps serving.
    clock.t += VALIDITY_MS - RENEW_BEFORE_MS;
    expect(await running.rotate()).toBe(false);
    const both = running.discovery().certificateHashes;
    expect(both).toHaveLength(2);
    expect(both[0]).toBe(current);
    expect(running.front.pid).toBe(pid);

    // Past expiry: the next one becomes current and the front restarts on it, same URL.
    clock.t += RENEW_BEFORE_MS;
    expect(await running.rotate()).toBe(true);
    expect(running.discovery().certificateHashes[0]).toBe(both[1]);
    expect(running.discovery().certificateHashes).not.toContain(current);
    expect(running.discovery().url).toBe(first.url);
    expect(running.front.pid).not.toBe(pid);
    expect(running.front.pid).not.toBeNull();
    expect(running.front.restarts).toBe(0); // a planned restart, not a crash
  });
});
