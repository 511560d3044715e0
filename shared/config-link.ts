/**
 * A `passage://` config link: settings in one string a user can paste (the companion prints one;
 * the options page exports and imports them). base64url JSON, so it survives chat apps and URL
 * bars. What it carries is judged by the one settings validator (settings.ts).
 */
import { SettingsError } from './errors.ts';
import { checkSettingsPatch, type PassageSettings } from './settings.ts';

const PREFIX = 'passage://config/';
/** A link longer than this is not one of ours (a full one is a few hundred characters). */
const MAX_LINK = 8192;

function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function encodeConfigLink(settings: Partial<PassageSettings>): string {
  return PREFIX + toBase64Url(new TextEncoder().encode(JSON.stringify(settings)));
}

/** Reads a config link: the settings it holds, each valid, or a SettingsError that says why not. */
export function decodeConfigLink(link: string): Partial<PassageSettings> {
  const bad = (why: string) => new SettingsError('CONFIG_LINK', `not a Passage config link: ${why}`);
  const trimmed = link.trim();
  if (!trimmed.startsWith(PREFIX) || trimmed.length > MAX_LINK) throw bad('wrong prefix or too long');
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromBase64Url(trimmed.slice(PREFIX.length))));
  } catch {
    throw bad('undecodable');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not an object');
  const settings = checkSettingsPatch(data);
  if (Object.keys(settings).length === 0) throw bad('it holds no settings');
  return settings;
}
