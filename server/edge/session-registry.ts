/**
 * The edge's meek sessions by id, with the idle reaper. A session is its seq state (shared/meek)
 * plus its upstream; the registry enforces the session limit and closes what goes idle.
 */
import { MeekServerSession } from '../../shared/meek/server-session.ts';
import type { Upstream } from './upstream.ts';

export interface EdgeSession {
  readonly id: string;
  readonly meek: MeekServerSession<Uint8Array>;
  readonly upstream: Upstream;
  lastActive: number;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, EdgeSession>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly maxSessions: number,
    private readonly idleTimeoutMs: number,
    private readonly onEnd: (session: EdgeSession, reason: 'idle' | 'finished' | 'shutdown') => void,
    /** Sessions held elsewhere that count against the same limit (WebTransport). */
    private readonly others: () => number = () => 0,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** No room for another session, meek or WebTransport. */
  get full(): boolean {
    return this.sessions.size + this.others() >= this.maxSessions;
  }

  get(id: string): EdgeSession | undefined {
    return this.sessions.get(id);
  }

  add(id: string, upstream: Upstream): EdgeSession {
    const session: EdgeSession = { id, meek: new MeekServerSession<Uint8Array>(), upstream, lastActive: Date.now() };
    this.sessions.set(id, session);
    return session;
  }

  end(session: EdgeSession, reason: 'idle' | 'finished' | 'shutdown'): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    session.upstream.close();
    this.onEnd(session, reason);
  }

  /** Tunneled streams across all sessions. */
  get streamCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.upstream.streamCount;
    return n;
  }

  /** Checks for idle sessions a few times per idle timeout; the timer never keeps the process alive. */
  startReaper(): void {
    const every = Math.max(50, Math.min(5000, this.idleTimeoutMs / 4));
    this.timer = setInterval(() => this.reap(Date.now()), every);
    this.timer.unref();
  }

  reap(now: number): void {
    for (const s of [...this.sessions.values()]) {
      if (now - s.lastActive >= this.idleTimeoutMs) this.end(s, 'idle');
    }
  }

  closeAll(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of [...this.sessions.values()]) this.end(s, 'shutdown');
  }
}
