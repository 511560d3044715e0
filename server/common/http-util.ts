import type http from 'node:http';

/**
 * Reads a request body of at most `max` bytes; null when it is larger. A declared Content-Length
 * over the limit is refused before a byte is read; a chunked body is cut off as soon as it passes.
 */
export function readBody(req: http.IncomingMessage, max: number): Promise<Uint8Array | null> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        resolve(null);
        return;
      }
      parts.push(chunk);
    });
    req.once('end', () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)));
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('request aborted')));
  });
}

export function send(res: http.ServerResponse, status: number, body: string | Uint8Array, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...(typeof body === 'string' ? { 'content-type': 'text/plain; charset=utf-8' } : {}), ...headers, 'content-length': String(bytes.length) });
  res.end(bytes);
}
