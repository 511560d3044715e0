import { describe, expect, it } from 'vitest';
import { X509Certificate, createHash, createPrivateKey, sign, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CertificateStore, RENEW_BEFORE_MS, VALIDITY_MS, generateCertificate } from '../../server/webtransport/certificates.ts';

const DAY = 86_400_000;

describe('WebTransport certificates', () => {
  it('are ECDSA P-256, valid under 14 days, and pinned by the sha-256 of their DER', async () => {
    const now = Date.UTC(2026, 10, 24);
    const c = await generateCertificate(now, ['localhost', '127.0.0.1']);
    const cert = new X509Certificate(c.certPem);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const validity = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    expect(validity).toBeLessThan(14 * DAY);
    expect(validity).toBe(VALIDITY_MS);
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(now);
    expect(cert.subjectAltName).toMatch(/DNS:localhost/);
    expect(cert.subjectAltName).toMatch(/IP Address:127\.0\.0\.1/);
    expect(c.sha256).toBe(createHash('sha256').update(cert.raw).digest('hex'));
    expect(cert.checkPrivateKey(createPrivateKey(c.keyPem))).toBe(true);
    const sig = sign('sha256', Buffer.from('x'), createPrivateKey(c.keyPem));
    expect(verify('sha256', Buffer.from('x'), cert.publicKey, sig)).toBe(true);
  });

  it('persist across restarts, prepare the next one ahead of expiry, and rotate to it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-wt-'));
    let now = Date.UTC(2026, 10, 24);
    const store = () => new CertificateStore(dir, ['localhost'], () => now);
    const a = await store().refresh();
    expect(a.next).toBeNull();
    expect(await store().hashes()).toEqual([a.current.sha256]); // a new process keeps the pin
    now += VALIDITY_MS - RENEW_BEFORE_MS + DAY; // within the renewal window
    const b = await store().refresh();
    expect(b.current.sha256).toBe(a.current.sha256);
    expect(b.next).not.toBeNull();
    expect(await store().hashes()).toEqual([a.current.sha256, b.next!.sha256]);
    now = a.current.notAfter + 1; // the first one expired: the prepared one takes over
    const c = await store().refresh();
    expect(c.current.sha256).toBe(b.next!.sha256);
    expect(c.current.notAfter).toBeGreaterThan(now);
  });

  it('replaces a damaged state file instead of trusting it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-wt-'));
    writeFileSync(path.join(dir, 'webtransport-certificates.json'), '{"current": 42');
    const state = await new CertificateStore(dir).refresh();
    expect(new X509Certificate(state.current.certPem).publicKey.asymmetricKeyType).toBe('ec');
  });
});
