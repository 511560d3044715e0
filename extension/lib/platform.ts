/**
 * Which browser runs the extension, asked in this one place (docs/PLATFORM.md, "Firefox"): the
 * background and the pages choose their browser glue from it. Firefox has a `browser` namespace
 * with `runtime.getBrowserInfo`; Chromium has neither.
 */
export type BrowserKind = 'chromium' | 'firefox';

interface FirefoxGlobals {
  browser?: { runtime?: { getBrowserInfo?: unknown } };
}

export function browserKind(g: object = globalThis): BrowserKind {
  return typeof (g as FirefoxGlobals).browser?.runtime?.getBrowserInfo === 'function' ? 'firefox' : 'chromium';
}

/** The name of the runtime.Port the pages reach the Firefox event page's api on. */
export const API_PORT = 'passage-api';

/**
 * Whether private windows are steered like the others. Chromium's regular proxy settings reach its
 * incognito windows too; Firefox asks an extension about private windows' requests only when the
 * user allowed it to run in them (about:addons), and otherwise they all go direct.
 */
export async function privateWindowsSteered(): Promise<boolean> {
  return browserKind() === 'chromium' || (await chrome.extension.isAllowedIncognitoAccess());
}

/**
 * Whether the add-on may see every site's requests. Firefox lets the user withdraw an MV3 add-on's
 * host permissions (about:addons), and `proxy.onRequest` is then not asked about those sites: they
 * would go direct. Chromium grants them at install for good.
 */
export async function siteAccessMissing(): Promise<boolean> {
  return browserKind() === 'firefox' && !(await chrome.permissions.contains({ origins: ['<all_urls>'] }));
}

/** Asks the user (from a click) to give the access back. */
export function requestSiteAccess(): Promise<boolean> {
  return chrome.permissions.request({ origins: ['<all_urls>'] });
}
