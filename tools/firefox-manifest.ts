/**
 * The Firefox manifest, derived from the one root manifest.json so that both builds name the same
 * pages and permissions. What differs, and why (docs/PLATFORM.md, Firefox):
 * - Firefox MV3 has no extension service worker: the same module runs as an event page;
 * - no `key` (Chromium's way to fix the id): the id is `browser_specific_settings.gecko.id`;
 * - no offscreen documents and no `webRequestAuthProvider`: the event page is a document (it has
 *   RTCPeerConnection itself), and proxy credentials go out with each proxied request;
 * - Firefox's default extension-page policy upgrades ws://127.0.0.1 (the bridge link) and
 *   http:// edges to TLS, so the policy is stated without `upgrade-insecure-requests`.
 */
export const FIREFOX_ID = 'passage@passage.invalid';
/** ESR 128 is the oldest with every API the event page uses (storage.session, MV3 proxy.onRequest). */
export const FIREFOX_MIN_VERSION = '128.0';

interface SourceManifest {
  background: { service_worker: string; type?: string };
  permissions: string[];
  options_page?: string;
  minimum_chrome_version?: string;
  key?: string;
  [field: string]: unknown;
}

const CHROMIUM_ONLY_PERMISSIONS = new Set(['offscreen', 'webRequestAuthProvider']);

export function firefoxManifest(source: SourceManifest): Record<string, unknown> {
  const { key: _key, minimum_chrome_version: _min, background, options_page, permissions, ...rest } = source;
  return {
    ...rest,
    background: { scripts: [background.service_worker], type: 'module' },
    permissions: [...permissions.filter((p) => !CHROMIUM_ONLY_PERMISSIONS.has(p)), 'webRequestBlocking'],
    ...(options_page ? { options_ui: { page: options_page, open_in_tab: true } } : {}),
    content_security_policy: { extension_pages: "script-src 'self'; object-src 'self'" },
    browser_specific_settings: { gecko: { id: FIREFOX_ID, strict_min_version: FIREFOX_MIN_VERSION } },
  };
}
