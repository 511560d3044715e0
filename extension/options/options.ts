/** Options: rules (with a tester and list imports), the edge and bridge settings, a share link, a backup file, the connection log. */
import { call } from '../lib/rpc.ts';
import { renderSiteList } from '../lib/site-list.ts';
import { fmtBytes, localize, t } from '../lib/i18n.ts';
import { displayHost, displayRule } from '../lib/rules.ts';
import type { ConnectionEntry, ImportSummary, RuleList } from '../lib/api.ts';
import { checkSettingsPatch, type PassageSettings } from '../../shared/settings.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: keyof PassageSettings) => $<HTMLInputElement>(id);

function say(error: string | null, notice: string | null = null): void {
  $('error').hidden = !error;
  $('error').textContent = error ?? '';
  $('notice').hidden = !notice;
  $('notice').textContent = notice ?? '';
}

const remove = (list: RuleList) => (item: { rule: string }) => void act(() => call('setSite', item.rule, false, list));

async function render(): Promise<void> {
  const s = await call('settings');
  input('edgeUrl').value = s.edgeUrl;
  input('authToken').value = s.authToken;
  input('bridgePort').value = String(s.bridgePort);
  input('pairingToken').value = s.pairingToken;
  ($('transport') as HTMLSelectElement).value = s.transport;
  input('sessions').value = String(s.sessions);
  input('webtransportRetrySeconds').value = String(s.webtransportRetrySeconds);
  input('guardWebRtc').checked = s.guardWebRtc;
  input('meekStreaming').checked = s.meekStreaming;
  input('padding').checked = s.padding;
  const status = await call('status');
  renderSiteList($('sites'), status.rules.sites.map((rule) => ({ rule })), { onRemove: remove('sites'), empty: t('none') });
  renderSiteList($('exclusions'), status.rules.exclusions.map((rule) => ({ rule })), { onRemove: remove('exclusions'), empty: t('none') });
  renderSiteList($('temporary'), status.temporary.map((rule) => ({ rule, temporary: true })), {
    onRemove: remove('temporary'),
    onKeep: (item) => void act(() => call('setSite', item.rule, true, 'sites')),
    empty: t('none'),
  });
  await renderLog();
}

function outcome(e: ConnectionEntry): string {
  if (e.outcome === 'open') return t('logOpen');
  if (e.outcome === 'closed') return t('logOk');
  if (e.by === 'browser') return t('logResetBrowser');
  if (e.by === null) return t('logEndedByRule');
  return t('logResetEdge', e.code !== null ? t(`code${e.code}`) : '?');
}

async function renderLog(): Promise<void> {
  const entries = await call('connections');
  const rows = entries.map((e) => {
    const tr = document.createElement('tr');
    const cells = [new Date(e.at).toLocaleTimeString(), `${displayHost(e.host)}:${e.port}`, displayRule(e.site), e.transport, `↑${fmtBytes(e.up)} ↓${fmtBytes(e.down)}`, outcome(e)];
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    tr.className = e.outcome === 'reset' && e.by === 'edge' ? 'bad' : '';
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.className = 'muted';
    td.textContent = t('logEmpty');
    tr.append(td);
    rows.push(tr);
  }
  $('log').querySelector('tbody')!.replaceChildren(...rows);
}

async function act(f: () => Promise<string | null | void>, notice: string | null = null): Promise<void> {
  try {
    const said = await f();
    say(null, typeof said === 'string' ? said : notice);
  } catch (e) {
    say((e as Error).message);
  }
  await render().catch((e) => say((e as Error).message));
}

const importedWords = (r: ImportSummary) => t('imported', r.format, r.added, r.excluded, r.skipped);
const changedWords = (keys: string[]) => (keys.length ? t('importChanged', keys.join(', ')) : t('importNothing'));

$('add-site').onsubmit = (e) => {
  e.preventDefault();
  const value = $<HTMLInputElement>('new-site').value;
  const list = ($('new-list') as HTMLSelectElement).value as RuleList;
  void act(async () => {
    const rule = await call('setSite', value, true, list);
    $<HTMLInputElement>('new-site').value = '';
    return t('ruleAdded', displayRule(rule));
  });
};

$('tester').onsubmit = (e) => {
  e.preventDefault();
  void (async () => {
    try {
      const { host, decision: d } = await call('testUrl', $<HTMLInputElement>('test-url').value);
      const rule = d.rule ? displayRule(d.rule) : '';
      const why = { rule: t('whyRule', rule), temporary: t('whyTemporary', rule), 'every-site': t('whyEverySite'), excluded: t('whyExcluded', rule), 'always-direct': t('whyAlwaysDirect'), off: t('whyOff'), 'no-rule': t('whyNoRule') }[d.why];
      $('test-result').textContent = t(d.tunnel ? 'testerTunnel' : 'testerDirect', displayHost(host), why);
      $('test-result').className = `row ${d.tunnel ? 'ok' : 'muted'}`;
      say(null);
    } catch (err) {
      $('test-result').textContent = '';
      say((err as Error).message);
    }
  })();
};

$<HTMLInputElement>('rules-file').onchange = (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) void act(async () => importedWords(await call('importRules', await file.text())));
};
$('rules-url-form').onsubmit = (e) => {
  e.preventDefault();
  void act(async () => importedWords(await call('importRulesFrom', $<HTMLInputElement>('rules-url').value.trim())));
};

$('settings').onsubmit = (e) => {
  e.preventDefault();
  const patch: Partial<PassageSettings> = {
    edgeUrl: input('edgeUrl').value.trim(),
    authToken: input('authToken').value,
    bridgePort: Number(input('bridgePort').value),
    pairingToken: input('pairingToken').value.trim(),
    transport: ($('transport') as HTMLSelectElement).value as PassageSettings['transport'],
    sessions: Number(input('sessions').value),
    webtransportRetrySeconds: Number(input('webtransportRetrySeconds').value),
    guardWebRtc: input('guardWebRtc').checked,
    meekStreaming: input('meekStreaming').checked,
    padding: input('padding').checked,
  };
  void act(async () => {
    checkSettingsPatch(patch);
    await call('saveSettings', patch);
  }, t('saved'));
};

$('export').onclick = () =>
  void act(async () => {
    $<HTMLTextAreaElement>('config-link').value = await call('exportShareLink', $<HTMLInputElement>('share-token').checked);
    return t('linkReady');
  });
$('import').onclick = () => void act(async () => changedWords(await call('importConfig', $<HTMLTextAreaElement>('config-link').value)));

$('backup').onclick = () =>
  void act(async () => {
    const text = await call('backup');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    a.download = `passage-backup-${new Date().toISOString().slice(0, 10)}.json`;
    a.click();
    URL.revokeObjectURL(a.href);
  });
$<HTMLInputElement>('restore-file').onchange = (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) void act(async () => changedWords(await call('restore', await file.text())));
};
$('log-clear').onclick = () => void act(() => call('clearConnections'));

localize();
void render().catch((e) => say((e as Error).message));
setInterval(() => void renderLog().catch(() => undefined), 2000);
