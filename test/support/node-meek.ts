/**
 * A meek client in Node built from shared/: MeekClientSession over node:http (keep-alive), and a
 * ReMux opener on top. This is what the tests and the benchmark drive the edge with; the
 * extension runs the same shared/ logic over fetch.
 */
import http from 'node:http';
import type { MeekClientSession, MeekRequest, MeekResponse } from '../../shared/meek/client-session.ts';
import { createMeekMux } from '../../shared/meek/meek-mux.ts';
import type { Mux } from '../../shared/remux/mux.ts';
import type { MeekError } from '../../shared/errors.ts';

export interface NodeMeekOptions {
  url: string;
  authToken?: string;
  acceptMaxBody?: number;
  useSeq?: boolean;
  agent?: http.Agent;
}

/** One HTTP round trip of a meek session. */
export function nodeRoundTrip(options: NodeMeekOptions) {
  const url = new URL(options.url);
  const agent = options.agent ?? new http.Agent({ keepAlive: true, maxSockets: 4 });
  return (req: MeekRequest): Promise<MeekResponse> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'content-length': String(req.body.length),
        'x-session-id': req.sessionId,
        'x-meek-max-body': String(req.acceptMaxBody),
      };
      if (req.seq !== null) headers['x-meek-seq'] = String(req.seq);
      if (options.authToken) headers['x-meek-auth'] = options.authToken;
      const r = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent, signal: req.signal }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const max = res.headers['x-meek-max-body'];
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), serverMaxBody: typeof max === 'string' ? Number(max) : null });
        });
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(req.body);
    });
}

/** A ReMux opener carried by one meek session to the edge. */
export function meekMux(options: NodeMeekOptions, onClose?: (e?: MeekError) => void): { mux: Mux; session: MeekClientSession } {
  return createMeekMux({
    roundTrip: nodeRoundTrip(options),
    ...(options.acceptMaxBody ? { acceptMaxBody: options.acceptMaxBody } : {}),
    ...(onClose ? { onClose } : {}),
  });
}
