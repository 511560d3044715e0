/**
 * Signalling for the TURN transport (PROTOCOL.md §4.1): the offer goes to `<meek path>rtc`,
 * authenticated like meek and discovery, and the edge's answer comes back.
 */
import type { PassageSettings } from '../../shared/settings.ts';

const SIGNAL_TIMEOUT_MS = 5000;

export async function signalRtc(settings: PassageSettings, offerSdp: string): Promise<string> {
  const res = await fetch(new URL('rtc', settings.edgeUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(settings.authToken ? { 'x-meek-auth': settings.authToken } : {}) },
    body: JSON.stringify({ sdp: offerSdp }),
    cache: 'no-store',
    credentials: 'omit',
    redirect: 'error',
    signal: AbortSignal.timeout(SIGNAL_TIMEOUT_MS),
  });
  if (res.status !== 200) throw new Error(`the edge answered ${res.status} to the offer`);
  const answer = (await res.json().catch(() => null)) as { type?: unknown; sdp?: unknown } | null;
  if (answer?.type !== 'answer' || typeof answer.sdp !== 'string') throw new Error('the edge sent no answer');
  return answer.sdp;
}
