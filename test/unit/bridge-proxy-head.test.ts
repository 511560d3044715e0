/** The bridge's parsers of untrusted bytes: HTTP request heads and SOCKS5, examples and fuzzing. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  HttpHeadError,
  MAX_HEAD_BYTES,
  NO_ACCEPTABLE_METHOD,
  SocksError,
  SocksReply,
  basicProxyPassword,
  connectDestination,
  parseSocksAuth,
  socksAuthReply,
  header,
  parseRequestHead,
  parseSocksGreeting,
  parseSocksRequest,
  rewriteAbsoluteForm,
} from '../../server/bridge/proxy-head.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Runs `f`; any throw must be of class `E`, else the property fails. */
function only<E extends Error, T>(E: new (...a: never[]) => E, f: () => T): T | E {
  try {
    return f();
  } catch (e) {
    if (e instanceof E) return e;
    throw e;
  }
}

const HEAD = 'CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\nUser-Agent: x\r\n\r\n';

describe('HTTP request heads', () => {
  it('parses a CONNECT head and says how many bytes it took; what follows is not part of it', () => {
    const head = parseRequestHead(bytes(HEAD + '\x16\x03\x01'))!;
    expect(head).toMatchObject({ method: 'CONNECT', target: 'blocked.test:443', version: 'HTTP/1.1', length: HEAD.length });
    expect(head.headers).toEqual([
      ['Host', 'blocked.test:443'],
      ['User-Agent', 'x'],
    ]);
    expect(header(head, 'user-agent')).toBe('x');
    expect(connectDestination(head)).toEqual({ type: 'domain', host: 'blocked.test', port: 443 });
  });

  it('every proper prefix of a head is incomplete (null), never an error', () => {
    const full = bytes(HEAD);
    for (let n = 0; n < full.length; n++) expect(parseRequestHead(full.subarray(0, n)), `prefix ${n}`).toBeNull();
  });

  it('refuses malformed request and header lines with 400, an oversized head with 431', () => {
    for (const bad of ['GET\r\n\r\n', 'GET / HTTP/2\r\n\r\n', 'G@T / HTTP/1.1\r\n\r\n', 'GET  / HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\r\nno colon\r\n\r\n', 'GET / HTTP/1.1\r\n: empty\r\n\r\n']) {
      const e = only(HttpHeadError, () => parseRequestHead(bytes(bad)));
      expect(e, JSON.stringify(bad)).toBeInstanceOf(HttpHeadError);
      expect((e as HttpHeadError).status).toBe(400);
    }
    const endless = new Uint8Array(MAX_HEAD_BYTES + 1).fill(0x61);
    expect(only(HttpHeadError, () => parseRequestHead(endless))).toMatchObject({ status: 431, reason: 'Request Header Fields Too Large' });
    const tooBig = bytes(`GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`);
    expect(only(HttpHeadError, () => parseRequestHead(tooBig))).toMatchObject({ status: 431 });
  });

  it('CONNECT targets: names, IPv4, bracketed IPv6; anything else 400', () => {
    const target = (t: string) => connectDestination(parseRequestHead(bytes(`CONNECT ${t} HTTP/1.1\r\n\r\n`))!);
    expect(target('10.1.2.3:80')).toEqual({ type: 'ipv4', host: '10.1.2.3', port: 80 });
    expect(target('[2001:db8::1]:443')).toEqual({ type: 'ipv6', host: '2001:db8::1', port: 443 });
    for (const bad of ['blocked.test', 'blocked.test:', '[::1:443', 'user@host:443', 'host:99999', 'host:0', 'a/b:1']) {
      expect(() => target(bad), bad).toThrow(HttpHeadError);
    }
  });

  it('absolute-form requests become origin form: hop-by-hop and proxy headers gone, Host kept or added, one request per stream', () => {
    const head = parseRequestHead(
      bytes('GET http://open.test:8080/a/b?c=1 HTTP/1.1\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic x\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n'),
    )!;
    const out = rewriteAbsoluteForm(head);
    expect(out.destination).toEqual({ type: 'domain', host: 'open.test', port: 8080 });
    expect(text(out.head)).toBe('GET /a/b?c=1 HTTP/1.1\r\nHost: open.test:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n');
    const withHost = rewriteAbsoluteForm(parseRequestHead(bytes('POST http://[::1]/ HTTP/1.0\r\nHost: elsewhere\r\n\r\n'))!);
    expect(withHost.destination).toEqual({ type: 'ipv6', host: '::1', port: 80 });
    expect(text(withHost.head)).toBe('POST / HTTP/1.0\r\nHost: elsewhere\r\nConnection: close\r\n\r\n');
    for (const bad of ['https://open.test/', 'http://u:p@open.test/', 'not-a-url', 'ftp://open.test/']) {
      expect(() => rewriteAbsoluteForm(parseRequestHead(bytes(`GET ${bad} HTTP/1.1\r\n\r\n`))!), bad).toThrow(HttpHeadError);
    }
  });

  it('hostile bytes: incomplete, a head whose length fits the input, or HttpHeadError — nothing else', () => {
    const printable = fc.stringMatching(/^[ -~\r\n:]{0,200}$/).map(bytes);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), printable, printable.map((b) => new Uint8Array([...b, 13, 10, 13, 10]))), (buf) => {
        const r = only(HttpHeadError, () => parseRequestHead(buf));
        if (r === null || r instanceof HttpHeadError) return;
        expect(r.length).toBeLessThanOrEqual(buf.length);
        const t = only(HttpHeadError, () => (r.method === 'CONNECT' ? connectDestination(r) : rewriteAbsoluteForm(r)));
        if (!(t instanceof HttpHeadError)) expect(t).toBeTruthy();
      }),
    );
  });
});

describe('SOCKS5', () => {
  const request = (atypAndAddress: number[], cmd = 0x01) => Uint8Array.from([0x05, cmd, 0x00, ...atypAndAddress]);
  const domain = [0x03, 12, ...bytes('blocked.test'), 0x01, 0xbb];

  it('greeting: its length when username/password is offered; incomplete while short; 0xFF when it is not', () => {
    expect(parseSocksGreeting(Uint8Array.of(0x05, 0x02, 0x00, 0x02))).toBe(4);
    expect(parseSocksGreeting(Uint8Array.of(0x05))).toBeNull();
    expect(parseSocksGreeting(Uint8Array.of(0x05, 0x02, 0x02))).toBeNull();
    const noAuth = only(SocksError, () => parseSocksGreeting(Uint8Array.of(0x05, 0x01, 0x00))) as SocksError;
    expect(noAuth.reply).toBe(NO_ACCEPTABLE_METHOD); // no credential offered: refused
    expect([...noAuth.answer()]).toEqual([0x05, 0xff]);
    expect(only(SocksError, () => parseSocksGreeting(Uint8Array.of(0x04, 0x01, 0x02)))).toMatchObject({ reply: SocksReply.FAILURE });
    expect(only(SocksError, () => parseSocksGreeting(Uint8Array.of(0x05, 0x00)))).toMatchObject({ reply: SocksReply.FAILURE });
  });

  it('username/password (RFC 1929): the pair and its length; every prefix incomplete; a wrong version refused', () => {
    const msg = Uint8Array.from([0x01, 7, ...bytes('passage'), 5, ...bytes('s3cr3'), 0x05]);
    expect(parseSocksAuth(msg)).toEqual({ username: 'passage', password: 's3cr3', length: msg.length - 1 });
    for (let n = 0; n < msg.length - 1; n++) expect(parseSocksAuth(msg.subarray(0, n)), `prefix ${n}`).toBeNull();
    expect(parseSocksAuth(Uint8Array.of(0x01, 0, 0))).toEqual({ username: '', password: '', length: 3 });
    expect(only(SocksError, () => parseSocksAuth(Uint8Array.of(0x05, 1, 0x61, 0)))).toBeInstanceOf(SocksError);
    expect([...socksAuthReply(true)]).toEqual([0x01, 0x00]);
    expect([...socksAuthReply(false)]).toEqual([0x01, 0x01]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (buf) => {
        const r = only(SocksError, () => parseSocksAuth(buf));
        if (r !== null && !(r instanceof SocksError)) expect(r.length).toBeLessThanOrEqual(buf.length);
      }),
    );
  });

  it('the HTTP proxy credential: Basic passage:<token>, nothing else', () => {
    const head = (value?: string) => parseRequestHead(bytes(`CONNECT a.test:443 HTTP/1.1\r\n${value === undefined ? '' : `Proxy-Authorization: ${value}\r\n`}\r\n`))!;
    const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(basicProxyPassword(head(basic('passage:tok:with:colons')))).toBe('tok:with:colons');
    expect(basicProxyPassword(head(basic('passage:')))).toBe('');
    for (const bad of [undefined, basic('someone:tok'), basic('passagetok'), 'Bearer abc', 'Basic !!!', '']) expect(basicProxyPassword(head(bad)), String(bad)).toBeNull();
  });

  it('request: the destination and the bytes it took; every prefix incomplete; the reply code says what was wrong', () => {
    const full = request(domain);
    expect(parseSocksRequest(full)).toEqual({ destination: { type: 'domain', host: 'blocked.test', port: 443 }, length: full.length });
    for (let n = 0; n < full.length; n++) expect(parseSocksRequest(full.subarray(0, n)), `prefix ${n}`).toBeNull();
    expect(parseSocksRequest(request([0x01, 127, 0, 0, 1, 0, 80]))!.destination).toEqual({ type: 'ipv4', host: '127.0.0.1', port: 80 });
    const bind = only(SocksError, () => parseSocksRequest(request(domain, 0x02))) as SocksError;
    expect(bind.reply).toBe(SocksReply.COMMAND_UNSUPPORTED);
    expect([...bind.answer()]).toEqual([0x05, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    expect(only(SocksError, () => parseSocksRequest(request([0x09, 1, 2, 3])))).toMatchObject({ reply: SocksReply.ADDRESS_UNSUPPORTED });
    expect(only(SocksError, () => parseSocksRequest(Uint8Array.of(0x05, 0x01, 0x01, 0x01)))).toMatchObject({ reply: SocksReply.FAILURE });
  });

  it('hostile bytes: incomplete, a request that fits the input, or SocksError — nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (buf, asRequest) => {
        const input = asRequest ? Uint8Array.from([0x05, 0x01, 0x00, ...buf]) : buf;
        const g = only(SocksError, () => parseSocksGreeting(input));
        if (typeof g === 'number') expect(g).toBeLessThanOrEqual(input.length);
        const r = only(SocksError, () => parseSocksRequest(input));
        if (r !== null && !(r instanceof SocksError)) expect(r.length).toBeLessThanOrEqual(input.length);
      }),
    );
  });
});
