/**
 * One tunneled connection at the edge: dial the stream's destination under the policy, then join
 * the socket to the stream. Until the dial completes the stream's bytes wait in it, unconsumed —
 * at most one window.
 */
import { ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { joinSocketStream, type JoinedStream } from './socket-stream.ts';
import type { Dial } from './dialer.ts';

export interface RelayEvents {
  onBytes(up: number, down: number): void;
  onDialError(code: number, error: unknown): void;
  onReset(code: number, by: 'client' | 'edge'): void;
  onClose(): void;
}

function dialCode(error: unknown): number {
  const code = (error as { resetCode?: unknown } | null)?.resetCode;
  return typeof code === 'number' ? code : ResetCode.UNREACHABLE;
}

/** The relay of one stream: joined once its destination answers (edge drain closes quiet ones). */
export interface Relay {
  closeIfQuiet(quietMs: number, now: number): boolean;
}

export function relayStream(stream: MuxStream, dial: Dial, events: RelayEvents): Relay {
  let cancelled = false;
  let joined: JoinedStream | null = null;
  // Only a reset handler while dialing: data and a FIN wait in the stream for the join.
  stream.attach({
    reset(code) {
      cancelled = true;
      events.onReset(code, 'client');
      events.onClose();
    },
  });
  dial(stream.destination).then(
    (socket) => {
      if (cancelled) return void socket.destroy();
      joined = joinSocketStream(
        socket,
        stream,
        { abortCode: ResetCode.CONNECTION_RESET },
        {
          onBytes: events.onBytes,
          onReset: (code, by) => events.onReset(code, by === 'peer' ? 'client' : 'edge'),
          onClose: events.onClose,
        },
      );
    },
    (err) => {
      if (cancelled) return;
      const code = dialCode(err);
      events.onDialError(code, err);
      stream.reset(code);
      events.onClose();
    },
  );
  return { closeIfQuiet: (quietMs, now) => joined?.closeIfQuiet(quietMs, now) ?? false };
}
