/**
 * The pages' words through chrome.i18n (_locales/<lang>/messages.json): `t` for a message, and
 * `localize` for the static page — elements name their message in `data-i18n` (text),
 * `data-i18n-placeholder` and `data-i18n-title`; the page takes the language's direction (Persian
 * is right to left).
 */

/** A message with its substitutions, in the order its English text first names them. */
export function t(key: string, ...subs: Array<string | number>): string {
  return chrome.i18n.getMessage(key, subs.map(String)) || key;
}

export function localize(root: Document = document): void {
  root.documentElement.lang = chrome.i18n.getUILanguage();
  root.documentElement.dir = chrome.i18n.getMessage('@@bidi_dir') || 'ltr';
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n]')) el.textContent = t(el.dataset.i18n!);
  for (const el of root.querySelectorAll<HTMLInputElement>('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder!);
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle!);
}

/** Bytes in binary units, as the pages show them. */
export const fmtBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);
