/**
 * What must survive a stopped service worker: settings, rules, counters — in IndexedDB via idb.
 * Reads time out and retry, so a cold worker with a slow database still gets on with its work.
 */
import { openDB, type IDBPDatabase } from 'idb';
import type { PassageSettings } from '../../shared/settings.ts';
import type { TurnOffer, WebTransportOffer } from './offers.ts';
import type { SiteCounters } from '../lib/api.ts';
import { EMPTY_RULES, type Rules } from '../lib/rules.ts';

export const DEFAULT_RULES: Rules = EMPTY_RULES;

/** What the edge last advertised (PROTOCOL.md §4), kept for when asking again fails. */
export interface StoredOffer {
  edgeUrl: string;
  webtransport: WebTransportOffer | null;
  /** Used again only while its credentials have life left. */
  turn: TurnOffer | null;
  fetchedAt: number;
}

export interface Schema {
  offer: StoredOffer;
  settings: PassageSettings;
  rules: Rules;
  counters: Record<string, SiteCounters>;
}

/** Where the worker keeps what must outlive it; IndexedDB in the extension, a Map in tests. */
export interface Store {
  load<K extends keyof Schema>(key: K): Promise<Schema[K] | undefined>;
  save<K extends keyof Schema>(key: K, value: Schema[K]): Promise<void>;
}

let db: Promise<IDBPDatabase> | null = null;

function database(): Promise<IDBPDatabase> {
  db ??= openDB('passage', 1, {
    upgrade(d) {
      d.createObjectStore('kv');
    },
  });
  return db;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('IndexedDB timed out')), ms))]);
}

/** Reads a key, retrying a slow or failing database a few times before giving up. */
async function load<K extends keyof Schema>(key: K): Promise<Schema[K] | undefined> {
  let last: unknown;
  for (const ms of [1000, 2000, 4000]) {
    try {
      return (await withTimeout(database().then((d) => d.get('kv', key)), ms)) as Schema[K] | undefined;
    } catch (e) {
      last = e;
      db = null; // reopen on the next try
    }
  }
  throw last;
}

async function save<K extends keyof Schema>(key: K, value: Schema[K]): Promise<void> {
  await withTimeout(database().then((d) => d.put('kv', value, key)), 4000);
}

export const indexedDbStore: Store = { load, save };

/** Where temporary rules live: gone when the browser restarts (chrome.storage.session), kept while the worker sleeps. */
export interface SessionStore {
  loadTemporary(): Promise<string[]>;
  saveTemporary(rules: string[]): Promise<void>;
}

export const chromeSessionStore: SessionStore = {
  async loadTemporary() {
    const got = (await chrome.storage.session.get('temporary')) as { temporary?: unknown };
    return Array.isArray(got.temporary) ? got.temporary.filter((t): t is string => typeof t === 'string') : [];
  },
  async saveTemporary(rules) {
    await chrome.storage.session.set({ temporary: rules });
  },
};
