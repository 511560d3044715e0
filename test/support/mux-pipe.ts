/**
 * Two Muxes joined by an in-memory wire, for tests and the benchmark. Delivery is synchronous by
 * default; `manual` holds every chunk until the test releases it, so races can be staged exactly.
 */
import { Mux, type MuxOptions } from '../../shared/remux/mux.ts';
export { concat } from './bytes.ts';

export interface Wire {
  /** Chunks written by one side and not yet delivered to the other (manual mode). */
  held: Uint8Array[];
  /** Delivers the first `count` held chunks (all by default). */
  deliver(count?: number): void;
}

export interface MuxPair {
  opener: Mux;
  acceptor: Mux;
  /** opener → acceptor */
  up: Wire;
  /** acceptor → opener */
  down: Wire;
  /** With `record`: every chunk in delivery order, with its direction. */
  log: Array<{ dir: 'up' | 'down'; bytes: Uint8Array }>;
}

export interface PipeOptions {
  manual?: boolean;
  /** Re-split every chunk before delivery (any byte boundary must work). */
  split?: (chunk: Uint8Array) => Uint8Array[];
  record?: boolean;
  opener?: Partial<MuxOptions>;
  acceptor?: Partial<MuxOptions>;
}

export function muxPair(options: PipeOptions = {}): MuxPair {
  let opener!: Mux;
  let acceptor!: Mux;
  const log: MuxPair['log'] = [];
  const makeWire = (dir: 'up' | 'down', target: () => Mux): Wire => {
    const wire: Wire = {
      held: [],
      deliver(count = wire.held.length) {
        const chunks = wire.held.splice(0, count);
        for (const c of chunks) {
          if (options.record) log.push({ dir, bytes: c.slice() });
          for (const piece of options.split ? options.split(c) : [c]) target().receive(piece);
        }
      },
    };
    return wire;
  };
  const up = makeWire('up', () => acceptor);
  const down = makeWire('down', () => opener);
  const sinkFor = (wire: Wire) => ({
    write(chunks: Uint8Array[]) {
      wire.held.push(...chunks);
      if (!options.manual) wire.deliver();
      return true;
    },
  });
  opener = new Mux({ role: 'opener', sink: sinkFor(up), ...options.opener });
  acceptor = new Mux({ role: 'acceptor', sink: sinkFor(down), ...options.acceptor });
  return { opener, acceptor, up, down, log };
}

/** Lets every queued microtask (the muxes flush in microtasks) and a macrotask turn run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
