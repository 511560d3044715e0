/**
 * Dials a tunneled stream's destination under the policy, with a timeout, and maps failure to
 * the RESET code the client sees (0x01 unreachable, 0x02 policy, 0x03 timeout).
 */
import net from 'node:net';
import type { Destination } from '../../shared/eagersocks.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import { PolicyError, resolveAllowed, type ResolveOptions } from './policy.ts';

export class DialError extends Error {
  constructor(
    message: string,
    readonly resetCode: number,
  ) {
    super(message);
  }
}

export interface DialOptions extends ResolveOptions {
  timeoutMs: number;
}

function connectOnce(address: string, port: number, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a destination's FIN becomes the stream's FIN while the client may still send.
    const socket = net.connect({ host: address, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DialError(`dial ${address}:${port} timed out`, ResetCode.TIMEOUT));
    }, Math.max(0, deadline - Date.now()));
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new DialError(`dial ${address}:${port}: ${e.code ?? e.message}`, ResetCode.UNREACHABLE));
    });
  });
}

export function createDialer(o: DialOptions): (destination: Destination) => Promise<net.Socket> {
  return async (destination) => {
    const deadline = Date.now() + o.timeoutMs;
    let addresses: string[];
    try {
      addresses = await Promise.race([
        resolveAllowed(destination.host, o),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new DialError(`resolving ${destination.host} timed out`, ResetCode.TIMEOUT)), o.timeoutMs).unref(),
        ),
      ]);
    } catch (e) {
      if (e instanceof DialError) throw e;
      if (e instanceof PolicyError) throw new DialError(e.message, e.reason === 'policy' ? ResetCode.POLICY : ResetCode.UNREACHABLE);
      throw e;
    }
    let last: unknown = null;
    for (const address of addresses) {
      if (Date.now() >= deadline) break;
      try {
        return await connectOnce(address, destination.port, deadline);
      } catch (e) {
        last = e;
        if (e instanceof DialError && e.resetCode === ResetCode.TIMEOUT) throw e;
      }
    }
    throw last instanceof DialError ? last : new DialError(`dial ${destination.host} timed out`, ResetCode.TIMEOUT);
  };
}
