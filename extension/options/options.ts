/** Options: sites, the edge and bridge settings, and a passage:// config link to export or import. */
import { call } from '../lib/rpc.ts';
import { renderSiteList } from '../lib/site-list.ts';
import { checkSettingsPatch, type PassageSettings } from '../../shared/settings.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: keyof PassageSettings) => $<HTMLInputElement>(id);

function say(error: string | null, notice: string | null = null): void {
  $('error').hidden = !error;
  $('error').textContent = error ?? '';
  $('notice').hidden = !notice;
  $('notice').textContent = notice ?? '';
}

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
  renderSiteList($('sites'), status.rules.sites, (site) => void act(() => call('setSite', site, false)), 'none yet');
}

async function act(f: () => Promise<unknown>, notice: string | null = null): Promise<void> {
  try {
    await f();
    say(null, notice);
  } catch (e) {
    say((e as Error).message);
  }
  await render().catch((e) => say((e as Error).message));
}

$('add-site').onsubmit = (e) => {
  e.preventDefault();
  const value = $<HTMLInputElement>('new-site').value;
  void act(async () => {
    const site = await call('setSite', value, true);
    $<HTMLInputElement>('new-site').value = '';
    return site;
  }, 'Site added');
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
  }, 'Saved');
};

$('export').onclick = () => void act(async () => ($<HTMLTextAreaElement>('config-link').value = await call('exportConfig')), 'Config link ready to copy');
$('import').onclick = () => void act(() => call('importConfig', $<HTMLTextAreaElement>('config-link').value), 'Settings imported');

void render().catch((e) => say((e as Error).message));
