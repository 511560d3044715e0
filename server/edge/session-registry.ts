/**
 * The edge's meek sessions by id, with the reaper. A session is its seq state (shared/meek) plus
 * its upstream. The registry decides whether a new session may open — the table's limit (meek and
 * WebTransport together), the client's share of it, and the process's memory budget — and ends
 * what goes idle, and sooner what carries no stream: an empty session costs its owner nothing to
 * make, so it must cost the edge little to keep.
 */
import { EMPTY_SESSION_MS, MeekServerSession } from '../../shared/meek/server-session.ts';
import { UploadPipeline } from '../../shared/meek/upload-pipeline.ts';
import { systemClock } from '../../shared/clock.ts';
import type { MemoryBudget } from './memory-budget.ts';
import type { Upstream } from './upstream.ts';


export type EndReason = 'idle' | 'empty' | 'finished' | 'shutdown' | 'drained';
/** Why a new session was refused: the table is full, this client holds its share, or memory is short. */
export type Refusal = 'limit' | 'client' | 'memory';

export interface EdgeSession {
  readonly id: string;
  readonly meek: MeekServerSession<Uint8Array>;
  readonly upstream: Upstream;
  /** The client key it counts against (edge/client-address.ts). */
  readonly client: string;
  lastActive: number;
  /** Since when it has carried no stream (null: it carries one). */
  emptySince: number | null;
  /** A meek-v2 session's state (PROTOCOL.md §1.1); null for meek v1. */
  readonly v2: MeekV2State | null;
}

export interface MeekV2State {
  readonly uploads: UploadPipeline;
  /** The requests serving downstream bytes now (a held poll, a stream, or lanes), by slot (meek-v2.ts claimDown). */
  readonly downs: Map<string, { end(): void }>;
  /** Lanes: the next downstream offset no lane has been given yet. */
  cursor: number;
}

export interface RegistryOptions {
  maxSessions: number;
  maxSessionsPerClient: number;
  idleTimeoutMs: number;
  onEnd(session: EdgeSession, reason: EndReason): void;
  /** Sessions held elsewhere that count against the same limit (WebTransport). */
  others?(): number;
  /** Sessions `client` holds outside this table (WebRTC peers): they count in its share too. */
  othersOf?(client: string): number;
  memory?: MemoryBudget;
  /** What a new session must find free in the memory budget. */
  sessionFloor?: number;
  /** What one client's sessions may hold together (its share of `memory`). */
  clientMemory?: number;
  now?(): number;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, EdgeSession>();
  private readonly perClient = new Map<string, Set<EdgeSession>>();
  private readonly unaccount = new Map<EdgeSession, () => void>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly now: () => number;
  private draining = false;

  constructor(private readonly o: RegistryOptions) {
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** No room for another session, meek or WebTransport. */
  get full(): boolean {
    return this.sessions.size + (this.o.others?.() ?? 0) >= this.o.maxSessions;
  }

  /** Whether `client` may open a session now, and if not why. */
  refusal(client: string): Refusal | null {
    if (this.full) return 'limit';
    if (this.clientAtShare(client)) return 'client';
    if (this.o.memory && !this.o.memory.admitSession(this.o.sessionFloor ?? 0)) return 'memory';
    if (!this.clientHasRoom(client, this.o.sessionFloor ?? 0)) return 'memory';
    return null;
  }

  /** Whether `client` holds its --max-sessions-per-client: its sessions here and those it holds elsewhere (`othersOf`). */
  clientAtShare(client: string): boolean {
    return (this.perClient.get(client)?.size ?? 0) + (this.o.othersOf?.(client) ?? 0) >= this.o.maxSessionsPerClient;
  }

  /** Bytes `client`'s sessions hold now. */
  clientMemoryUsed(client: string): number {
    let sum = 0;
    for (const s of this.perClient.get(client) ?? []) sum += s.upstream.memoryUsed() + (s.v2?.uploads.waitingBytes ?? 0);
    return sum;
  }

  /** Whether `client`'s share of the memory budget has `bytes` free (one client cannot take the whole budget). */
  clientHasRoom(client: string, bytes: number): boolean {
    return this.o.clientMemory === undefined || this.clientMemoryUsed(client) + bytes <= this.o.clientMemory;
  }

  get(id: string): EdgeSession | undefined {
    return this.sessions.get(id);
  }

  add(id: string, upstream: Upstream, client = '', v2 = false): EdgeSession {
    const now = this.now();
    const session: EdgeSession = {
      id,
      meek: new MeekServerSession<Uint8Array>(),
      upstream,
      client,
      lastActive: now,
      emptySince: now,
      v2: v2 ? { uploads: new UploadPipeline(systemClock), downs: new Map(), cursor: 0 } : null,
    };
    this.sessions.set(id, session);
    let mine = this.perClient.get(client);
    if (!mine) this.perClient.set(client, (mine = new Set()));
    mine.add(session);
    if (this.o.memory) this.unaccount.set(session, this.o.memory.add(upstream));
    // A draining edge still serves a new session (its first request may carry a stream) but tells it to move.
    if (this.draining) upstream.goaway();
    return session;
  }

  /**
   * Drain (SIGTERM): every session, and every one opened from now on, is told to move (GOAWAY);
   * each ends at the next reap once its client has read that and its streams are done.
   */
  drain(): void {
    this.draining = true;
    for (const s of this.sessions.values()) s.upstream.goaway();
  }

  /** Draining: every session's streams that sit at a quiet moment are ended (FIN to the client). */
  closeQuiet(quietMs: number): void {
    for (const s of this.sessions.values()) s.upstream.closeQuiet(quietMs);
  }

  end(session: EdgeSession, reason: EndReason): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    const mine = this.perClient.get(session.client);
    mine?.delete(session);
    if (mine?.size === 0) this.perClient.delete(session.client);
    this.unaccount.get(session)?.();
    this.unaccount.delete(session);
    session.upstream.close();
    session.v2?.uploads.close();
    for (const d of [...(session.v2?.downs.values() ?? [])]) d.end();
    this.o.onEnd(session, reason);
  }

  /** Tunneled streams across all sessions. */
  get streamCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.upstream.streamCount;
    return n;
  }

  /** Checks every second (so an empty session goes within seconds); the timer never keeps the process alive. */
  startReaper(): void {
    const every = Math.max(50, Math.min(1000, this.o.idleTimeoutMs / 4));
    this.timer = setInterval(() => this.reap(this.now()), every);
    this.timer.unref();
  }

  reap(now: number): void {
    for (const s of [...this.sessions.values()]) {
      if (s.upstream.streamCount > 0) s.emptySince = null;
      else s.emptySince ??= now;
      // A session with a down request open has its client there (a stream lasts at most --stream-max).
      if (this.draining && s.upstream.movedAway) this.end(s, 'drained');
      else if (now - s.lastActive >= this.o.idleTimeoutMs && !s.v2?.downs.size) this.end(s, 'idle');
      else if (s.emptySince !== null && now - s.emptySince >= EMPTY_SESSION_MS) this.end(s, 'empty');
    }
  }

  closeAll(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of [...this.sessions.values()]) this.end(s, 'shutdown');
  }
}
