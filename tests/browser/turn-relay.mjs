// Two RTCPeerConnections in one headless Chromium page, relay-only
// (iceTransportPolicy 'relay') through realtimer's TURN server, with the
// iceServers its GET /api/ice-servers hands to pages (REST credentials).
//
//   node turn-relay.mjs URL udp|tcp|tls ... [--firefox [--ca FILE]]
//
// URL is the server's base, e.g. http://127.0.0.1:8080 (the TURN URLs name
// the page's host; with TLS the server's certificate is not checked). For
// each transport only the TURN URLs of that transport are kept (tls: the
// turns: URL). Checks that a data channel opens, a message crosses both ways,
// and getStats shows the selected pair's local candidates are relayed over
// that transport. Prints one line per check and "N passed, N failed".
// --firefox: in Firefox ESR instead (puppeteer-core over BiDi).
import { launchChromium, launchFirefox } from './launch.mjs';

const firefox = process.argv.includes('--firefox');
// --ca FILE: the CA of the server's certificate, which Firefox's profile
// then trusts (for tls in Firefox).
const caAt = process.argv.indexOf('--ca');
const caFile = caAt > 0 ? process.argv[caAt + 1] : null;
const [base, ...transports] = process.argv.slice(2)
  .filter((a, i, all) => a !== '--firefox' && a !== '--ca' && all[i - 1] !== '--ca');
if (!base || transports.length === 0) {
  console.error('usage: node turn-relay.mjs URL udp|tcp ...');
  process.exit(2);
}

const browser = firefox
  ? await launchFirefox({ caFile })
  : await launchChromium(['--use-fake-ui-for-media-stream', '--ignore-certificate-errors']);

let passed = 0;
let failed = 0;
function ok(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}

const page = await browser.newPage();
page.on('console', (m) => console.log(`page ${m.type()}: ${m.text()}`));
await page.goto(new URL('/', base).href);

for (const transport of transports) {
  let result;
  try {
    result = await page.evaluate(async (transport) => {
      const { relayOnly } = await import('/js/ice-servers.js');
      const config = await relayOnly(transport);
      const a = new RTCPeerConnection(config);
      const b = new RTCPeerConnection(config);
      const types = { a: [], b: [] };
      for (const [pc, other, name] of [[a, b, 'a'], [b, a, 'b']]) {
        pc.onicecandidate = (e) => {
          // Firefox ends gathering with an empty candidate.
          if (e.candidate?.candidate) {
            types[name].push(e.candidate.type);
            other.addIceCandidate(e.candidate);
          }
        };
      }
      const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms));
      const channel = a.createDataChannel('relay');
      const answered = new Promise((resolve) => {
        b.ondatachannel = (e) => {
          e.channel.onmessage = (m) => { e.channel.send(`echo: ${m.data}`); };
        };
        channel.onmessage = (m) => resolve(m.data);
      });
      const open = new Promise((resolve) => { channel.onopen = resolve; });
      await a.setLocalDescription();
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription();
      await a.setRemoteDescription(b.localDescription);
      await Promise.race([open, timeout(20000, `channel open (ICE ${a.iceConnectionState})`)]);
      channel.send('hello over TURN');
      const echo = await Promise.race([answered, timeout(10000, 'echo')]);
      const selected = async (pc) => {
        const stats = await pc.getStats();
        let pairId;
        stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
        // Firefox has no transport stats: its pair in use says selected.
        stats.forEach((s) => { if (!pairId && s.type === 'candidate-pair' && s.selected) pairId = s.id; });
        const pair = stats.get(pairId);
        const local = pair && stats.get(pair.localCandidateId);
        return local ? { type: local.candidateType, relayProtocol: local.relayProtocol } : null;
      };
      const out = { echo, types, a: await selected(a), b: await selected(b), urls: config.iceServers.flatMap((s) => s.urls) };
      a.close();
      b.close();
      return out;
    }, transport);
  } catch (e) {
    ok(`${transport}: relay-only call`, false, String(e));
    continue;
  }
  console.log(`${transport}: ${JSON.stringify(result)}`);
  const scheme = transport === 'tls' ? 'turns:' : 'turn:';
  ok(`${transport}: only TURN URLs of this transport`, result.urls.length > 0 && result.urls.every((u) => u.startsWith(scheme) && u.endsWith(`transport=${transport === 'tls' ? 'tcp' : transport}`)), result.urls.join(' '));
  ok(`${transport}: only relay candidates gathered`, result.types.a.length > 0 && [...result.types.a, ...result.types.b].every((t) => t === 'relay'));
  ok(`${transport}: message crossed both ways`, result.echo === 'echo: hello over TURN', result.echo);
  for (const side of ['a', 'b']) {
    ok(`${transport}: ${side}'s selected pair is local relay`, result[side]?.type === 'relay', JSON.stringify(result[side]));
    ok(`${transport}: ${side} relays over ${transport}`, result[side]?.relayProtocol === transport, JSON.stringify(result[side]));
  }
}

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
