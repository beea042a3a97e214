// The browser end of examples/browser_data_channel.rs: headless Chromium
// opens a page of `realtimer serve`, joins ROOM over the server's /ws
// protocol (docs/signaling.md), answers the Rust example's offer, and
// sends every message of its data channel back with "echo: " in front,
// until COUNT arrived and the example hung up.
//
//   node example-dc-peer.mjs URL ROOM COUNT
//
// Prints one line per check and "N passed, N failed"; exits 1 if any
// failed.
import { launchChromium } from './launch.mjs';

const [base, room, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!base || !room || !count) {
  console.error('usage: node example-dc-peer.mjs URL ROOM COUNT');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function ok(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`page: ${m.text()}`));
  await page.goto(base + '/');
  const result = await page.evaluate(async ({ room, count }) => {
    const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
    const pc = new RTCPeerConnection();
    const got = [];
    const send = (data) => ws.send(JSON.stringify({ type: 'message', data }));
    let hungUp;
    const bye = new Promise((resolve) => { hungUp = resolve; });
    const messages = new Promise((resolve) => {
      pc.ondatachannel = ({ channel }) => {
        channel.onmessage = ({ data }) => {
          got.push(data);
          channel.send('echo: ' + data);
          if (got.length === count) resolve();
        };
      };
    });
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) {
        send({ type: 'candidate', candidate: candidate.candidate, sdpMid: candidate.sdpMid,
          sdpMLineIndex: candidate.sdpMLineIndex });
      }
    };
    ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room }));
    ws.onmessage = async ({ data }) => {
      const frame = JSON.parse(data);
      if (frame.type !== 'message') return;
      const message = frame.data;
      if (message.type === 'offer') {
        await pc.setRemoteDescription(message);
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        send({ type: 'answer', sdp: answer.sdp });
      } else if (message.type === 'candidate' && message.candidate) {
        await pc.addIceCandidate(message).catch((e) => console.log(`addIceCandidate: ${e}`));
      } else if (message.type === 'bye') {
        hungUp();
      }
    };
    const timeout = (ms) => new Promise((resolve) => setTimeout(() => resolve('timeout'), ms));
    const all = await Promise.race([messages.then(() => 'all'), timeout(90000)]);
    const end = await Promise.race([bye.then(() => 'bye'), timeout(30000)]);
    pc.close();
    ws.close();
    return { all, end, got };
  }, { room, count });
  ok(`${count} messages from the Rust example`, result.all === 'all', JSON.stringify(result.got));
  ok('they are its greetings, in order',
    result.got.every((m, i) => m === `hello ${i + 1} from Rust`), JSON.stringify(result.got));
  ok('the example hung up', result.end === 'bye');
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
