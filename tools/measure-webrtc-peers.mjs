// The measurement behind the choice of the edge's WebRTC peer (docs/PLATFORM.md, "WebRTC peers"):
// data-channel throughput between two peers in one Node process, over host candidates on loopback
// or relayed by a TURN server. The candidates are not dependencies of Passage; run it in a scratch
// folder: npm i node-datachannel@0.33.4 @roamhq/wrtc@0.10.0 werift@0.25.2, copy this file there, then
//   node measure-webrtc-peers.mjs ndc|wrtc|werift ["turn:127.0.0.1:PORT,USERNAME,PASSWORD"]
// (coturn with --use-auth-secret: USERNAME an expiry time, PASSWORD base64(HMAC-SHA1(secret, USERNAME))).
const lib = process.argv[2];
const turn = process.argv[3]; // "turn:127.0.0.1:3478?transport=udp,user,pass" or none
let PC;
if (lib === 'wrtc') PC = (await import('@roamhq/wrtc')).default.RTCPeerConnection;
else if (lib === 'ndc') PC = (await import('node-datachannel/polyfill')).RTCPeerConnection;
else if (lib === 'werift') PC = (await import('werift')).RTCPeerConnection;
const cfg = turn ? (() => { const [urls, username, credential] = turn.split(','); return { iceServers: [{ urls, username, credential }], iceTransportPolicy: 'relay' }; })() : { iceServers: [] };
const a = new PC(cfg), b = new PC(cfg);
a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate).catch(() => {});
b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate).catch(() => {});
const dc = a.createDataChannel('t', { ordered: true });
const TOTAL = 64 * 1024 * 1024, MSG = 16 * 1024;
const got = new Promise((resolve) => {
  b.ondatachannel = (ev) => {
    let n = 0;
    ev.channel.onmessage = (m) => {
      n += m.data.byteLength ?? m.data.length;
      if (n >= TOTAL) resolve();
    };
  };
});
const offer = await a.createOffer(); await a.setLocalDescription(offer); await b.setRemoteDescription(a.localDescription);
const answer = await b.createAnswer(); await b.setLocalDescription(answer); await a.setRemoteDescription(b.localDescription);
await new Promise((r) => (dc.readyState === 'open' ? r() : (dc.onopen = r)));
const t0 = performance.now();
const chunk = new Uint8Array(MSG);
dc.bufferedAmountLowThreshold = 1 << 20;
let sent = 0;
const pump = () => {
  while (sent < TOTAL && dc.bufferedAmount < 4 << 20) { dc.send(chunk); sent += MSG; }
};
dc.onbufferedamountlow = pump;
pump();
const poll = setInterval(pump, 5);
await got;
clearInterval(poll);
const s = (performance.now() - t0) / 1000;
console.log(`${lib}${turn ? ' via TURN' : ''}: ${(TOTAL / 1e6 / s).toFixed(1)} MB/s, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
a.close(); b.close();
setTimeout(() => process.exit(0), 200);
