/**
 * Dials a tunneled stream's destination under the policy, within one deadline, and maps every
 * failure to the RESET code the client sees (PROTOCOL.md §2–3):
 *   0x01 name did not resolve, or no address accepted the connection
 *   0x02 every address the name resolved to is refused by the policy
 *   0x03 resolving and connecting took longer than the dial timeout
 */
import net from 'node:net';
import type { Destination } from '../../shared/eagersocks.ts';
import { resolveAllowed, type ResolveOptions } from './policy.ts';
import { DialError } from './dial-error.ts';

export interface DialOptions extends ResolveOptions {
  /** For resolving and connecting together. */
  timeoutMs: number;
}

/** Opens a TCP connection to a stream's destination; rejects with a DialError. */
export type Dial = (destination: Destination) => Promise<net.Socket>;

function connectOnce(address: string, port: number, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a destination's FIN becomes the stream's FIN while the client may still send.
    const socket = net.connect({ host: address, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DialError(`dial ${address}:${port} timed out`, 'timeout'));
    }, Math.max(0, deadline - Date.now()));
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new DialError(`dial ${address}:${port}: ${e.code ?? e.message}`, 'unreachable'));
    });
  });
}

/** Resolves under the policy, giving up at the deadline (a hung resolver must not hold a stream). */
async function allowedAddresses(host: string, o: DialOptions, deadline: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DialError(`resolving ${host} timed out`, 'timeout')), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([resolveAllowed(host, o), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens a TCP connection to `destination`: resolve once, then try each allowed address in turn
 * (never resolving again) until one connects or the deadline passes. Rejects with a DialError.
 */
export async function dial(destination: Destination, o: DialOptions): Promise<net.Socket> {
  const deadline = Date.now() + o.timeoutMs;
  const addresses = await allowedAddresses(destination.host, o, deadline);
  let last: DialError | null = null;
  for (const address of addresses) {
    if (Date.now() >= deadline) break;
    try {
      return await connectOnce(address, destination.port, deadline);
    } catch (e) {
      if (!(e instanceof DialError)) throw e;
      if (e.reason === 'timeout') throw e;
      last = e;
    }
  }
  if (Date.now() >= deadline) throw new DialError(`dial ${destination.host}:${destination.port} timed out`, 'timeout');
  throw last ?? new DialError(`dial ${destination.host}:${destination.port}: no address`, 'unreachable');
}

/** `dial` with its options bound: what the edge hands to each stream. */
export function createDialer(o: DialOptions): Dial {
  return (destination) => dial(destination, o);
}
