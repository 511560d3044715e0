/**
 * Who a request comes from, for the per-client share of the session table: the socket's peer, or
 * — only when that peer is a `--trusted-proxy` — the right-most X-Forwarded-For entry that is not
 * itself trusted (entries to its left are the client's to write, so they are never believed).
 * IPv6 clients are keyed by their /64: one subscriber usually holds a whole /64.
 */
import type http from 'node:http';
import { BlockList, isIP } from 'node:net';
import { parseIPv6 } from '../../shared/ip.ts';
import type { ProxyEndpoint } from '../../shared/proxy-protocol.ts';
import { proxyHeaderOf } from './proxy-protocol-front.ts';

/** `::ffff:1.2.3.4` → `1.2.3.4`: a dual-stack listener reports IPv4 peers mapped. */
function unmapped(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** The key a client's sessions are counted under: its IPv4 address (also when written IPv4-mapped), or its IPv6 /64. */
export function clientKey(address: string): string {
  const a = unmapped(address);
  const v6 = isIP(a) === 6 ? parseIPv6(a) : null;
  if (!v6) return a;
  if (v6.slice(0, 5).every((w) => w === 0) && v6[5] === 0xffff) return [v6[6]! >> 8, v6[6]! & 0xff, v6[7]! >> 8, v6[7]! & 0xff].join('.');
  return `${v6.slice(0, 4).map((w) => w.toString(16)).join(':')}::/64`;
}

/** Whether an address is one of the `--trusted-proxy` ranges. */
export function trustedProxies(trusted: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of trusted) {
    const [ip, bits] = entry.split('/') as [string, string];
    list.addSubnet(ip, Number(bits), isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  }
  return (raw) => {
    const address = unmapped(raw);
    const family = isIP(address);
    return trusted.length > 0 && family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** A request's client: the key its sessions count under, and the connection as a PROXY header would name it. */
export interface ClientAddress {
  key: string;
  /** The client's address and port (port 0 when only X-Forwarded-For named it). */
  source: ProxyEndpoint;
  /** The address and port the client reached: the balancer's, when its PROXY header says so. */
  destination: ProxyEndpoint;
}

export function createClientAddress(trusted: readonly string[]): (req: http.IncomingMessage) => ClientAddress {
  const isTrusted = trustedProxies(trusted);
  return (req) => {
    const local = { address: unmapped(req.socket.localAddress ?? ''), port: req.socket.localPort ?? 0 };
    const of = (source: ProxyEndpoint, destination: ProxyEndpoint = local): ClientAddress => ({ key: clientKey(source.address), source, destination });
    // A trusted balancer's PROXY v2 header names the client outright (edge/proxy-protocol-front.ts).
    const proxied = proxyHeaderOf(req.socket);
    if (proxied && proxied.command === 'proxy' && 'source' in proxied) return of(proxied.source, proxied.destination);
    const peer = { address: unmapped(req.socket.remoteAddress ?? ''), port: req.socket.remotePort ?? 0 };
    if (trusted.length === 0 || !isTrusted(peer.address)) return of(peer);
    let client = peer.address;
    const forwarded = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').map((h) => unmapped(h.trim()));
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) break; // garbage: stop believing the header here
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client === peer.address ? of(peer) : of({ address: client, port: 0 });
  };
}
