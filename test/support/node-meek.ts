/**
 * A meek client in Node built from shared/: a meek session (v1, or v2 when asked) over node:http
 * (keep-alive), and a ReMux opener on top. This is what the tests and the benchmark drive the
 * edge with; the extension runs the same shared/ logic over fetch.
 */
import http from 'node:http';
import https from 'node:https';
import { meekRequestHeaders, type MeekRequest, type MeekResponse } from '../../shared/meek/round-trip.ts';
import { createMeekMux, type MeekMux, type MeekMuxOptions } from '../../shared/meek/meek-mux.ts';
import type { MeekError } from '../../shared/errors.ts';

export interface NodeMeekOptions {
  url: string;
  authToken?: string;
  acceptMaxBody?: number;
  useSeq?: boolean;
  agent?: http.Agent;
  /** meek v2 (default 1), and its choices. */
  version?: 1 | 2;
  streaming?: boolean;
  padding?: boolean;
  /** https: the CA to trust. */
  ca?: string | Buffer;
  onMode?: MeekMuxOptions['onMode'];
}

/** One HTTP round trip of a meek session; a streaming down request resolves at its headers. */
export function nodeRoundTrip(options: NodeMeekOptions) {
  const url = new URL(options.url);
  const secure = url.protocol === 'https:';
  const agent = options.agent ?? (secure ? new https.Agent({ keepAlive: true, maxSockets: 16, ...(options.ca ? { ca: options.ca } : {}) }) : new http.Agent({ keepAlive: true, maxSockets: 16 }));
  const request = secure ? https.request : http.request;
  return (req: MeekRequest): Promise<MeekResponse> =>
    new Promise((resolve, reject) => {
      const headers = { ...meekRequestHeaders(req, options.authToken), 'content-length': String(req.body.length) };
      const r = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent, signal: req.signal }, (res) => {
        const header = (name: string) => {
          const v = res.headers[name];
          return typeof v === 'string' ? v : null;
        };
        const max = res.headers['x-meek-max-body'];
        const base = { status: res.statusCode ?? 0, serverMaxBody: typeof max === 'string' ? Number(max) : null, header };
        if (req.v2?.down === 'stream' && res.statusCode === 200) {
          resolve({ ...base, body: new Uint8Array(0), stream: res });
          return;
        }
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ ...base, body: Buffer.concat(parts) }));
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(req.body);
    });
}

/** A ReMux opener carried by one meek session to the edge. */
export function meekMux(options: NodeMeekOptions, onClose?: (e?: MeekError) => void): MeekMux {
  return createMeekMux({
    roundTrip: nodeRoundTrip(options),
    ...(options.acceptMaxBody ? { acceptMaxBody: options.acceptMaxBody } : {}),
    ...(onClose ? { onClose } : {}),
    ...(options.version === 2 ? { version: 2, streaming: options.streaming ?? true, padding: options.padding ?? true, onMode: options.onMode } : {}),
  });
}
