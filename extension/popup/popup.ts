/** The popup: this tab's site with its switch, the global switch, the one current problem, live status in plain words. */
import { call } from '../lib/rpc.ts';
import { privateWindowsSteered, requestSiteAccess, siteAccessMissing } from '../lib/platform.ts';
import { renderSiteList } from '../lib/site-list.ts';
import { fmtBytes, localize, t } from '../lib/i18n.ts';
import { currentProblem } from '../lib/problems.ts';
import { displayHost, displayRule, tunnelsAny } from '../lib/rules.ts';
import type { EngineStatus, SiteCounters, TabInfo } from '../lib/api.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const tabParam = new URLSearchParams(location.search).get('tab');
const tabId = tabParam !== null && /^\d+$/.test(tabParam) ? Number(tabParam) : null;

function show(id: string, text: string | null): void {
  const el = $(id);
  el.hidden = !text;
  el.textContent = text ?? '';
}

function line(id: string, ok: boolean | null, text: string): void {
  const el = $(id);
  el.className = `row ${ok === null ? 'warn' : ok ? 'ok' : 'bad'}`;
  el.textContent = text;
}

/** Chromium's error for a failed request, in words. */
function failureWords(error: string): string {
  if (error === 'net::ERR_NAME_NOT_RESOLVED') return t('failNameNotResolved');
  if (/RESET|CLOSED|EMPTY_RESPONSE|ABORTED/.test(error)) return t('failReset');
  if (/TIMED_OUT/.test(error)) return t('failTimedOut');
  if (/REFUSED|UNREACHABLE/.test(error)) return t('failRefused');
  return t('failOther');
}

function transportWords(s: EngineStatus): string {
  if (s.transport === 'webtransport') return t('viaWebTransport');
  if (s.transport === 'turn') return t('viaTurn');
  if (s.transport === 'none') return t('viaNone');
  if (s.transportDetail?.startsWith('streaming')) return t('viaMeekStreaming');
  if (s.transportDetail?.startsWith('polling: this network')) return t('viaMeekPolling');
  return t('viaMeek');
}

function stateWords(tab: TabInfo): string {
  const d = tab.decision;
  if (!d) return '';
  const rule = d.rule ? displayRule(d.rule) : '';
  switch (d.why) {
    case 'off':
      return t('stateOff');
    case 'rule':
      return t('stateRule', rule);
    case 'temporary':
      return t('stateTemporary', rule);
    case 'every-site':
      return t('stateEverySite');
    case 'excluded':
      return t('stateExcluded', rule);
    case 'always-direct':
      return t('stateAlwaysDirect');
    default:
      return t('stateDirect');
  }
}

function renderStatus(s: EngineStatus & { counters: Record<string, SiteCounters> }, tab: TabInfo): void {
  ($('enabled') as HTMLInputElement).checked = s.rules.enabled;
  ($('all-sites') as HTMLInputElement).checked = s.rules.allSites;
  line('status-companion', s.linked, s.linked ? `${t('companionLinked')}${s.linkRttMs !== null ? ` (${s.linkRttMs} ms)` : ''}` : t('companionLinking'));
  const reached = s.edgeReachable === true && s.edgeProblem === null;
  const edgeWords = reached
    ? `${t('edgeReachable')}${s.rttMs !== null ? t('roundTrip', s.rttMs) : ''}`
    : s.edgeProblem === 'token'
      ? t('edgeRefusedToken')
      : s.edgeReachable === null && !s.edgeProblem
        ? t('edgeNotContacted')
        : t('edgeUnreachableShort');
  line('status-edge', s.edgeProblem ? false : s.edgeReachable, edgeWords);
  $('status-transport').textContent = transportWords(s);
  $('status-traffic').textContent = t('traffic', fmtBytes(s.bytesUp), fmtBytes(s.bytesDown), s.openStreams);
  const items = [...s.rules.sites.map((rule) => ({ rule })), ...s.temporary.map((rule) => ({ rule, temporary: true }))];
  renderSiteList($('sites'), items, {
    onRemove: (item) => void act(() => call('setSite', item.rule, false, item.temporary ? 'temporary' : 'sites')),
    onKeep: (item) => void act(() => call('setSite', item.rule, true, 'sites')),
    empty: t('noSitesYet'),
  });
  const problem = currentProblem(s, tab, s.counters, Date.now(), displayHost);
  show('problem', problem ? t(problem.key, ...problem.subs) : null);
  show('notice', !problem && s.webtransportFallback && s.transport === 'meek' ? t('noticeFallback') : null);
  const steering = tunnelsAny(s.rules, s.temporary);
  void privateWindowsSteered().then((steered) => show('private-note', steering && !steered ? t('privateWindowsDirect') : null));
  void siteAccessMissing().then((missing) => {
    $('access-problem').hidden = !(steering && missing);
    $('access-words').textContent = t('siteAccessMissing');
    $('access-grant').textContent = t('siteAccessGrant');
  });
}

async function renderTab(s: EngineStatus & { counters: Record<string, SiteCounters> }, tab: TabInfo): Promise<void> {
  const toggle = $('site-toggle') as HTMLInputElement;
  $('site').textContent = tab.site ? displayHost(tab.site) : tab.url ? t('notAWebSite') : t('noTab');
  const d = tab.decision;
  toggle.disabled = tab.site === null || !s.rules.enabled || d?.why === 'always-direct';
  toggle.checked = tab.proxied;
  $('site-state').textContent = stateWords(tab);
  $('site-state').className = `row ${tab.proxied ? 'ok' : 'muted'}`;
  const c = d?.rule ? s.counters[d.rule] : tab.site ? s.counters[tab.site] : undefined;
  $('site-traffic').textContent = c ? t('siteTraffic', fmtBytes(c.up), fmtBytes(c.down)) + (c.rttMs !== null ? t('siteRtt', c.rttMs) : '') : '';
  toggle.onchange = () => void act(() => call('switchTab', tab.id, toggle.checked, ($('temporary') as HTMLInputElement).checked));
  const failed = tab.id !== null && tab.proxied ? await call('failedResources', tab.id) : [];
  $('failed-section').hidden = failed.length === 0;
  $('failed').replaceChildren(
    ...failed.map((f) => {
      const li = document.createElement('li');
      const name = document.createElement('bdi');
      name.className = 'site';
      name.textContent = displayHost(f.host);
      const why = document.createElement('span');
      why.className = 'muted small';
      why.textContent = ` ${failureWords(f.error)}`;
      const add = document.createElement('button');
      add.textContent = t('tunnelIt');
      add.dataset.host = f.host;
      add.onclick = () => void act(() => call('setSite', f.host, true, ($('temporary') as HTMLInputElement).checked ? 'temporary' : 'sites'));
      li.append(name, why, add);
      return li;
    }),
  );
}

async function refresh(): Promise<void> {
  try {
    const [status, tab] = await Promise.all([call('status'), call('tab', tabId)]);
    renderStatus(status, tab);
    await renderTab(status, tab);
  } catch (e) {
    show('problem', (e as Error).message);
  }
}

async function act(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    show('problem', (e as Error).message);
    return;
  }
  await refresh();
}

localize();
($('enabled') as HTMLInputElement).onchange = (e) => void act(() => call('setEnabled', (e.target as HTMLInputElement).checked));
($('all-sites') as HTMLInputElement).onchange = (e) => void act(() => call('setAllSites', (e.target as HTMLInputElement).checked));
void refresh();
setInterval(() => void refresh(), 1000);

$('access-grant').addEventListener('click', () => void requestSiteAccess().then(() => refresh()));
