/**
 * The bridge's proxy credential (PROTOCOL.md §5): this user name, with the pairing token as the
 * password. One constant for the bridge that checks it and the extension that answers with it.
 */
export const PROXY_USER = 'passage';

/** The `Proxy-Authorization` value for a token (Basic; tokens are ASCII, so `btoa` takes them). */
export function basicProxyAuthorization(token: string): string {
  return `Basic ${btoa(`${PROXY_USER}:${token}`)}`;
}
