/** The edge must be reached over TLS unless it is on this machine (pure, tested). */
export function edgeUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'the edge URL is not a URL';
  }
  if (u.username || u.password) return 'the edge URL must not carry credentials (use the auth token)';
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
  if (u.protocol === 'https:' || (u.protocol === 'http:' && loopback)) return null;
  return 'the edge URL must be https:// (plain http:// only for an edge on this machine)';
}
