/**
 * The WebTransport endpoint's self-signed certificates (PROTOCOL.md §4). Chromium accepts a
 * pinned certificate (`serverCertificateHashes`) only if it is ECDSA and valid for less than 14
 * days, so the edge keeps one current and, ahead of expiry, the next: it advertises both hashes,
 * and a client that refreshes daily never meets a certificate it has not pinned. The pair is kept
 * in the config folder, so a restart keeps the pins clients already hold.
 */
import { createHash, webcrypto } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const DAY = 24 * 60 * 60 * 1000;
/** Under Chromium's 14-day limit with a day to spare for clock skew. */
export const VALIDITY_MS = 13 * DAY;
/** The next certificate is made (and advertised) this long before the current one expires. */
export const RENEW_BEFORE_MS = 3 * DAY;

export interface Certificate {
  certPem: string;
  keyPem: string;
  notBefore: number;
  notAfter: number;
  /** sha-256 of the DER certificate, hex: what `serverCertificateHashes` pins. */
  sha256: string;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

export async function generateCertificate(now: number, hostnames: readonly string[] = ['localhost']): Promise<Certificate> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  // Backdated a minute: a client whose clock runs a little behind still sees it as valid.
  const notBefore = now - 60_000;
  const notAfter = notBefore + VALIDITY_MS;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: 'CN=Passage edge',
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(hostnames.map((value) => ({ type: /^[\d.]+$|:/.test(value) ? ('ip' as const) : ('dns' as const), value }))),
    ],
  });
  const der = cert.rawData;
  return {
    certPem: pem('CERTIFICATE', der),
    keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    notBefore,
    notAfter,
    sha256: createHash('sha256').update(Buffer.from(der)).digest('hex'),
  };
}

export interface CertificateState {
  current: Certificate;
  next: Certificate | null;
}

/** The hashes to advertise: the current certificate's, then the next one's when prepared. */
export function advertisedHashes({ current, next }: CertificateState): string[] {
  return next ? [current.sha256, next.sha256] : [current.sha256];
}

/** Current and next certificate, kept in `dir`; `refresh` rotates and renews as time passes. */
export class CertificateStore {
  private state: CertificateState | null = null;

  constructor(
    private readonly dir: string,
    private readonly hostnames: readonly string[] = ['localhost'],
    private readonly now: () => number = Date.now,
  ) {}

  private get file(): string {
    return path.join(this.dir, 'webtransport-certificates.json');
  }

  private load(): CertificateState | null {
    if (!existsSync(this.file)) return null;
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as CertificateState;
      return data.current?.certPem ? data : null;
    } catch {
      return null; // a damaged file is replaced, never trusted
    }
  }

  private save(state: CertificateState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  /**
   * Brings the pair up to date: a missing or expired current certificate is replaced (by the
   * prepared next one when it is valid), and a next one is made once the current is within
   * RENEW_BEFORE_MS of expiry. Returns the state to serve and advertise.
   */
  async refresh(): Promise<CertificateState> {
    const now = this.now();
    let state = this.state ?? this.load();
    let changed = false;
    if (!state || state.current.notAfter <= now) {
      const next = state?.next && state.next.notAfter > now ? state.next : null;
      state = { current: next ?? (await generateCertificate(now, this.hostnames)), next: null };
      changed = true;
    }
    if (!state.next && state.current.notAfter - now <= RENEW_BEFORE_MS) {
      state = { ...state, next: await generateCertificate(now, this.hostnames) };
      changed = true;
    }
    if (changed) this.save(state);
    this.state = state;
    return state;
  }

  /** The hashes to advertise, brought up to date first. */
  async hashes(): Promise<string[]> {
    return advertisedHashes(await this.refresh());
  }
}
