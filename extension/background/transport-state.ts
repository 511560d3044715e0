/** What a transport to the edge reports to the tunnel and, through it, to the popup. */
export interface TransportState {
  name: 'meek' | 'webtransport';
  reachable: boolean | null;
  rttMs: number | null;
  error: string | null;
  sessions: number;
}
