/** The pages' languages: every locale has every message, with the same placeholders as English; every key the pages name exists. */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/processes.ts';

type Messages = Record<string, { message: string; placeholders?: Record<string, { content: string }> }>;
const dir = path.join(ROOT, 'extension/public/_locales');
const read = (lang: string) => JSON.parse(readFileSync(path.join(dir, lang, 'messages.json'), 'utf8')) as Messages;
const names = (text: string) => [...new Set([...text.matchAll(/\$([A-Z]+)\$/g)].map((m) => m[1]!.toLowerCase()))].sort();

describe('locales', () => {
  const en = read('en');
  const langs = readdirSync(dir);

  it('ships English, Persian, Russian and Simplified Chinese', () => {
    expect(langs.sort()).toEqual(['en', 'fa', 'ru', 'zh_CN']);
  });

  for (const lang of langs) {
    it(`${lang}: every English message, each with English's placeholders and a definition for each`, () => {
      const m = read(lang);
      expect(Object.keys(m).sort()).toEqual(Object.keys(en).sort());
      for (const [key, e] of Object.entries(en)) {
        expect(names(m[key]!.message), `${lang}/${key}`).toEqual(names(e.message));
        expect(m[key]!.placeholders ?? {}, `${lang}/${key}`).toEqual(e.placeholders ?? {});
        for (const n of names(e.message)) expect(e.placeholders?.[n], `${key}: $${n}$`).toBeDefined();
      }
    });
  }

  it('every message key the pages and scripts name exists', () => {
    const sources = ['extension/popup.html', 'extension/options.html', 'extension/popup/popup.ts', 'extension/options/options.ts', 'extension/lib/problems.ts', 'extension/lib/site-list.ts', 'extension/background/toolbar.ts'];
    const used = new Set<string>();
    for (const file of sources) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/data-i18n(?:-placeholder|-title)?="([A-Za-z0-9]+)"/g)) used.add(m[1]!);
      for (const m of text.matchAll(/\bt\('([A-Za-z0-9]+)'/g)) used.add(m[1]!);
      for (const m of text.matchAll(/key: '([A-Za-z0-9]+)'/g)) used.add(m[1]!);
      for (const m of text.matchAll(/'(problem[A-Za-z]+)'/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(60);
    for (const key of used) expect(en[key], key).toBeDefined();
  });
});
