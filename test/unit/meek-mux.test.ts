/** A meek session's ReMux opener: when a client should stop reusing a session the edge may soon end. */
import { describe, expect, it } from 'vitest';
import { createMeekMux } from '../../shared/meek/meek-mux.ts';
import { EMPTY_SESSION_MS, REUSE_EMPTY_SESSION_MS } from '../../shared/meek/server-session.ts';
import { FakeClock } from '../support/fake-clock.ts';

describe('meek mux: stale sessions', () => {
  it('goes stale after carrying no stream for half the edge’s empty-session limit, and not while a stream is open', async () => {
    expect(REUSE_EMPTY_SESSION_MS).toBeLessThan(EMPTY_SESSION_MS);
    const clock = new FakeClock();
    // An edge that answers every poll at once with nothing.
    const lane = createMeekMux({ roundTrip: async () => ({ status: 200, body: new Uint8Array(0), serverMaxBody: 262144 }), clock });
    await clock.advance(REUSE_EMPTY_SESSION_MS - 1);
    expect(lane.stale).toBe(false);
    await clock.advance(1);
    expect(lane.stale).toBe(true);
    const s = lane.mux.open({ type: 'domain', host: 'x.test', port: 1 });
    expect(lane.stale).toBe(false);
    await clock.advance(EMPTY_SESSION_MS * 3);
    expect(lane.stale).toBe(false); // a stream is open: the edge keeps the session
    s.reset(5);
    await clock.advance(REUSE_EMPTY_SESSION_MS - 1);
    expect(lane.stale).toBe(false);
    await clock.advance(1);
    expect(lane.stale).toBe(true);
    lane.session.close();
  });
});
