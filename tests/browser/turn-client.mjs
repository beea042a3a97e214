// Headless Chromium offers a data channel with iceTransportPolicy 'relay'
// through a TURN server; a realtimer PeerConnection (the Rust test that
// runs this script) answers through the same server. Signaling is JSON
// lines: this script prints the browser's messages on stdout and reads the
// Rust side's on stdin.
//
//   node turn-client.mjs TURN_URL USERNAME CREDENTIAL
//
// The browser sends "ping", expects "pong" back, then prints
// {"result": {...}} with the selected pair's local and remote candidate
// types and the relayProtocol from getStats, and exits.
import { launchChromium } from './launch.mjs';
import { createInterface } from 'node:readline';

const [url, username, credential] = process.argv.slice(2);
if (!credential) {
  console.error('usage: node turn-client.mjs TURN_URL USERNAME CREDENTIAL');
  process.exit(2);
}
const send = (m) => process.stdout.write(`${JSON.stringify(m)}\n`);

const browser = await launchChromium();
const page = await browser.newPage();
page.on('console', (m) => console.error(`page ${m.type()}: ${m.text()}`));
await page.exposeFunction('signal', (m) => send(m));
createInterface({ input: process.stdin }).on('line', (line) => {
  page.evaluate((m) => window.onSignal(m), JSON.parse(line)).catch((e) => console.error(e));
});

let result;
try {
  result = await page.evaluate(async ({ url, username, credential }) => {
    const pc = new RTCPeerConnection({
      iceServers: [{ urls: url, username, credential }],
      iceTransportPolicy: 'relay',
    });
    const pending = [];
    window.onSignal = async (m) => {
      if (m.answer) {
        await pc.setRemoteDescription({ type: 'answer', sdp: m.answer });
        for (const c of pending.splice(0)) await pc.addIceCandidate(c);
      } else if (m.candidate !== undefined) {
        if (pc.remoteDescription) await pc.addIceCandidate(m.candidate);
        else pending.push(m.candidate);
      }
    };
    pc.onicecandidate = (e) => window.signal({ candidate: e.candidate ? e.candidate.toJSON() : null });
    const channel = pc.createDataChannel('relay');
    const pong = new Promise((resolve) => { channel.onmessage = (e) => resolve(e.data); });
    const open = new Promise((resolve) => { channel.onopen = resolve; });
    await pc.setLocalDescription(await pc.createOffer());
    window.signal({ offer: pc.localDescription.sdp });
    const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms));
    await Promise.race([open, timeout(20000, 'channel open')]);
    channel.send('ping');
    const reply = await Promise.race([pong, timeout(10000, 'pong')]);
    const stats = await pc.getStats();
    let selected;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) selected = stats.get(s.selectedCandidatePairId);
    });
    const local = selected && stats.get(selected.localCandidateId);
    const remote = selected && stats.get(selected.remoteCandidateId);
    pc.close();
    return {
      reply,
      local: local && local.candidateType,
      relayProtocol: local && local.relayProtocol,
      remote: remote && remote.candidateType,
    };
  }, { url, username, credential });
} catch (e) {
  result = { error: String(e) };
}
send({ result });
await browser.close();
process.exit(0);
