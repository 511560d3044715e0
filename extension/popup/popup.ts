/** The popup: this tab's site with its switch, the global switch, live status in plain words. */
import { call } from '../lib/rpc.ts';
import { renderSiteList } from '../lib/site-list.ts';
import type { EngineStatus } from '../lib/api.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const tabParam = new URLSearchParams(location.search).get('tab');
const tabId = tabParam !== null && /^\d+$/.test(tabParam) ? Number(tabParam) : null;

const fmtBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);

function showError(message: string | null): void {
  const el = $('error');
  el.hidden = !message;
  el.textContent = message ?? '';
}

function line(id: string, ok: boolean | null, text: string): void {
  const el = $(id);
  el.className = `row ${ok === null ? 'warn' : ok ? 'ok' : 'bad'}`;
  el.textContent = text;
}

function renderStatus(s: EngineStatus): void {
  ($('enabled') as HTMLInputElement).checked = s.rules.enabled;
  ($('all-sites') as HTMLInputElement).checked = s.rules.allSites;
  line('status-companion', s.linked, s.linked ? `Companion linked${s.linkRttMs !== null ? ` (${s.linkRttMs} ms)` : ''}` : s.linkError ?? 'Linking to the companion…');
  line(
    'status-edge',
    s.edgeReachable,
    s.edgeReachable === true ? `Edge reachable${s.rttMs !== null ? `, round trip ${s.rttMs} ms` : ''}` : s.edgeReachable === false ? `Edge unreachable: ${s.edgeError ?? ''}. Check the edge URL in Options.` : 'Edge not contacted yet',
  );
  $('status-transport').textContent = `Transport: ${s.transportWhy}${s.transportDetail ? ` (${s.transportDetail})` : ''}`;
  $('status-traffic').textContent = `Up ${fmtBytes(s.bytesUp)} · down ${fmtBytes(s.bytesDown)} · ${s.openStreams} open connection${s.openStreams === 1 ? '' : 's'}`;
  renderSiteList($('sites'), s.rules.sites, (site) => void act(() => call('setSite', site, false)), 'none yet: switch a site on above');
  showError(s.proxyError ?? s.settingsError ?? (!s.linked ? s.linkError : null));
}

async function renderTab(): Promise<void> {
  const tab = await call('tab', tabId);
  const toggle = $('site-toggle') as HTMLInputElement;
  $('site').textContent = tab.site ?? (tab.url ? 'not a web site' : 'no tab');
  toggle.disabled = tab.site === null;
  toggle.checked = tab.proxied;
  $('site-state').textContent = tab.proxied ? 'through Passage' : 'direct';
  const c = tab.site ? lastStatus?.counters[tab.site] : undefined;
  $('site-traffic').textContent = c ? `this site: up ${fmtBytes(c.up)} · down ${fmtBytes(c.down)}${c.rttMs !== null ? ` · round trip ${c.rttMs} ms` : ''}` : '';
  toggle.onchange = () => void act(() => call('setSite', tab.site!, toggle.checked));
}

let lastStatus: Awaited<ReturnType<typeof call<'status'>>> | null = null;

async function refresh(): Promise<void> {
  try {
    lastStatus = await call('status');
    renderStatus(lastStatus);
    await renderTab();
  } catch (e) {
    showError(`${(e as Error).message}`);
  }
}

async function act(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    showError((e as Error).message);
  }
  await refresh();
}

($('enabled') as HTMLInputElement).onchange = (e) => void act(() => call('setEnabled', (e.target as HTMLInputElement).checked));
($('all-sites') as HTMLInputElement).onchange = (e) => void act(() => call('setAllSites', (e.target as HTMLInputElement).checked));
void refresh();
setInterval(() => void refresh(), 1000);
