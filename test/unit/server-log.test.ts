import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from '../../server/common/log.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { stream, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('redacts tokens and auth headers wherever callers put them', () => {
    const out = capture();
    const log = createLogger('info', 'passage-test', out.stream);
    log.info({ token: 'pairing-secret', authToken: 'edge-secret', auth: 'x' }, 'top level');
    log.info({ config: { authToken: 'edge-secret', pairingToken: 'pairing-secret' } }, 'one level down');
    log.info({ req: { headers: { 'x-meek-auth': 'edge-secret', authorization: 'Bearer edge-secret', 'x-session-id': 'abc' } } }, 'headers');
    log.info({ headers: { 'x-meek-auth': 'edge-secret' } }, 'bare headers');
    const text = JSON.stringify(out.records());
    expect(text).not.toContain('secret');
    expect(text).toContain('[redacted]');
    expect(text).toContain('abc'); // other headers stay
    expect(out.records()[0]).toMatchObject({ name: 'passage-test', msg: 'top level', token: '[redacted]' });
  });

  it('honours the level', () => {
    const out = capture();
    const log = createLogger('warn', 'passage-test', out.stream);
    log.info('hidden');
    log.warn('shown');
    expect(out.records().map((r) => r.msg)).toEqual(['shown']);
    const silent = capture();
    createLogger('silent', 'passage-test', silent.stream).fatal('nothing');
    expect(silent.records()).toEqual([]);
  });
});
