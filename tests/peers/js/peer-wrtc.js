#!/usr/bin/env node
// Interop peer: libwebrtc (@roamhq/wrtc), or werift (a TypeScript stack)
// with --stack werift, with WebSocket JSON signaling. Copied from the shared
// libwebrtc peer; --stack is ours.
//
//   node peer-wrtc.js --url ws://127.0.0.1:PORT[/room] --role offerer|answerer
//                     --mode echo|test [--cases LIST] [--timeout 120]
//                     [--stack wrtc|werift]
//                     [--case-timeout 15] [--photo-bytes 1228800]
//                     [--all-candidates] [--quiet] [--fault NAME (echo only)]
//
// Signaling (JSON text frames, relayed verbatim by relay.js):
//   {"type":"offer","sdp":"v=0..."}       offerer -> answerer
//   {"type":"answer","sdp":"v=0..."}      answerer -> offerer
//   {"type":"candidate","candidate":"candidate:...","sdpMid":"0","sdpMLineIndex":0}
//        trickled both ways; a nested {"candidate":{candidate,sdpMid,sdpMLineIndex}}
//        is accepted too; an empty/absent candidate string is ignored.
//   {"type":"bye"}                        "I am done"; the other side closes
//   {"type":"peer-left"}                  sent by relay.js; treated like bye
// Unknown types are ignored. Candidates arriving before the remote
// description are queued.
//
// Both roles create a negotiated channel {negotiated:true,id:5} at start, so
// id 5 is reserved on both sides. The offerer also creates a channel "control"
// before the offer so the SDP has an m=application section.
//
// --mode echo: every message on every channel (announced, negotiated or own)
//   is sent back unchanged (text as text, binary as binary). One extension: the
//   text "__dcinfo__" is answered with the JSON text
//   {"dcinfo":{label,protocol,ordered,maxRetransmits,maxPacketLifeTime,negotiated,id}}
//   as seen by this side, so the tester can check DCEP parameters. A peer that
//   echoes "__dcinfo__" verbatim is accepted; the parameter check is skipped.
// --mode media-echo (--stack werift): audio and video RTP sent back, see
//   below; channels are ignored.
// --mode test: runs the cases below one by one, prints "PASS name" /
//   "FAIL name: reason" and a closing "N passed, N failed"; exit 0 if all pass.
//
// By default only loopback candidates (127.0.0.0/8, ::1) are sent and
// accepted, so the peer never targets a real interface even outside a netns.
'use strict';
const WebSocket = require('ws');
const { parseArgs, isLoopbackCandidate } = require('./common');

const args = parseArgs(process.argv.slice(2), {
  role: 'answerer', mode: 'echo', timeout: 120, 'case-timeout': 15, 'photo-bytes': 640 * 480 * 4, cases: 'all',
  stack: 'wrtc',
});
const STACK = require('./stack')(args.stack);
if (!args.url) { console.error('usage: --url ws://127.0.0.1:PORT [--role offerer|answerer] [--mode echo|test]'); process.exit(2); }
if (!['offerer', 'answerer'].includes(args.role) || !['echo', 'test', 'media-echo'].includes(args.mode)) {
  console.error('bad --role or --mode'); process.exit(2);
}
// Both echo modes end on the tester's bye; only the tester has a verdict.
const ECHOING = args.mode !== 'test';
const TAG = '[peer ' + args.role + '/' + args.mode + '] ';
const log = (m) => { if (!args.quiet) console.error(TAG + m); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const NEGOTIATED_ID = 5;
const CHUNK = 64000;

// ---- the case list (names are stable; scripts can select with --cases) ----
const CASES = [
  ['text', 'text UTF-8 round trip'],
  ['text-empty', 'empty text message (PPID 56) [extra]'],
  ['binary-0', 'binary 0 bytes'],
  ['binary-1', 'binary 1 byte'],
  ['binary-64000', 'binary 64000 bytes'],
  ['binary-262144', 'binary 262144 bytes'],
  ['negotiated-5', 'negotiated channel id 5'],
  ['unordered-rtx0', 'unordered, maxRetransmits 0'],
  ['protocol-chat', "subprotocol 'chat'"],
  ['photo', 'photo transfer: length string then 64000-byte chunks'],
  ['ordered-burst', '500 x 1 KiB ordered burst keeps order [extra]'],
  ['lifetime-1000', 'maxPacketLifeTime 1000 ms parameters [extra]'],
  ['close', 'local close completes (stream reset) [extra]'],
];

let finished = false;
const hardStop = setTimeout(() => { log('timeout ' + args.timeout + ' s, exiting'); finish(3); }, args.timeout * 1000);

// ---- signaling ----
const ws = new WebSocket(args.url);
const send = (obj) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); };
// --ice-servers JSON (RTCIceServer list, e.g. GET /api/ice-servers of
// `realtimer serve`) and --relay (iceTransportPolicy 'relay').
const pc = STACK.peerConnection({
  iceServers: args['ice-servers'] ? JSON.parse(args['ice-servers']) : [],
  iceTransportPolicy: args.relay ? 'relay' : 'all',
});
let remoteSet = false;
const pendingCands = [];
let sigChain = Promise.resolve();

pc.onicecandidate = (ev) => {
  const c = ev.candidate;
  if (!c || !c.candidate) return;
  if (!args['all-candidates'] && !isLoopbackCandidate(c.candidate)) return;
  send({ type: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex });
};
pc.onconnectionstatechange = () => {
  log('connectionState ' + pc.connectionState);
  if (pc.connectionState === 'failed') finish(args.mode === 'test' ? 1 : 4);
};

async function addCand(msg) {
  const raw = msg.candidate;
  const c = raw && typeof raw === 'object'
    ? { candidate: raw.candidate, sdpMid: raw.sdpMid, sdpMLineIndex: raw.sdpMLineIndex }
    : { candidate: raw, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex };
  if (!c.candidate) return; // end-of-candidates or empty
  if (!args['all-candidates'] && !isLoopbackCandidate(c.candidate)) { log('ignoring non-loopback candidate'); return; }
  if (c.sdpMid == null && c.sdpMLineIndex == null) c.sdpMLineIndex = 0;
  if (!remoteSet) { pendingCands.push(c); return; }
  await pc.addIceCandidate(c).catch((e) => log('addIceCandidate: ' + e.message));
}

async function onSignal(msg) {
  switch (msg.type) {
    case 'offer': {
      if (args.role !== 'answerer') { log('unexpected offer'); return; }
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      remoteSet = true;
      // The offer's media sections come as receive-only transceivers: they
      // send the echo back, so they send too.
      if (args.mode === 'media-echo') {
        for (const t of pc.getTransceivers()) if (t.kind !== 'application') t.setDirection('sendrecv');
      }
      for (const c of pendingCands.splice(0)) await pc.addIceCandidate(c).catch((e) => log('addIceCandidate: ' + e.message));
      const ans = await pc.createAnswer();
      await pc.setLocalDescription(ans);
      send({ type: 'answer', sdp: pc.localDescription.sdp });
      break;
    }
    case 'answer': {
      if (args.role !== 'offerer') { log('unexpected answer'); return; }
      await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      remoteSet = true;
      for (const c of pendingCands.splice(0)) await pc.addIceCandidate(c).catch((e) => log('addIceCandidate: ' + e.message));
      break;
    }
    case 'candidate':
      await addCand(msg);
      break;
    case 'bye':
    case 'peer-left':
      log('remote said ' + msg.type);
      if (ECHOING) finish(0);
      else if (!testsDone) { console.log('FAIL remote left before the tests finished'); finish(1); }
      // else: runTests() is about to exit with its own status
      break;
    default:
      break;
  }
}

ws.on('message', (data) => {
  let msg;
  try { msg = JSON.parse(data.toString()); } catch (e) { log('bad JSON from signaling'); return; }
  sigChain = sigChain.then(() => onSignal(msg)).catch((e) => log('signaling error: ' + e.message));
});
ws.on('close', () => { log('signaling closed'); if (!finished && ECHOING) finish(0); });
ws.on('error', (e) => { log('signaling error: ' + e.message); finish(5); });

// ---- channels ----
function dcInfo(ch) {
  const mr = ch.maxRetransmits, ml = ch.maxPacketLifeTime;
  return {
    label: ch.label, protocol: ch.protocol, ordered: ch.ordered,
    // wrtc reports 65535 for "unset"; the W3C API says null
    maxRetransmits: mr === 65535 || mr === undefined ? null : mr,
    maxPacketLifeTime: ml === 65535 || ml === undefined ? null : ml,
    negotiated: ch.negotiated, id: ch.id,
  };
}

// --fault makes the echo side misbehave on purpose, to prove that the tester
// notices (selftest.js uses it): flip-byte | text-as-binary | plain-echo
const FAULT = args.fault || null;
function echo(ch) {
  ch.binaryType = 'arraybuffer';
  ch.addEventListener('message', (ev) => {
    if (ch.readyState !== 'open') return;
    let d = STACK.data(ev.data);
    try {
      if (d === '__dcinfo__' && FAULT !== 'plain-echo') { ch.send(JSON.stringify({ dcinfo: dcInfo(ch) })); return; }
      if (FAULT === 'flip-byte' && typeof d !== 'string' && d.byteLength > 0) {
        const c = new Uint8Array(d.slice(0));
        c[c.length - 1] ^= 1;
        d = c;
      }
      if (FAULT === 'text-as-binary' && typeof d === 'string') d = new TextEncoder().encode(d);
      STACK.send(ch, d);
    } catch (e) { log('echo send on ' + ch.label + ': ' + e.message); }
  });
  ch.addEventListener('open', () => log('channel open: ' + JSON.stringify(dcInfo(ch))));
  ch.addEventListener('close', () => log('channel closed: ' + ch.label));
}

const negotiated = pc.createDataChannel('negotiated-5', { negotiated: true, id: NEGOTIATED_ID });
negotiated.binaryType = 'arraybuffer';
let control = null;
if (args.role === 'offerer') { control = pc.createDataChannel('control'); control.binaryType = 'arraybuffer'; }

// --mode media-echo (werift only, as Pion's --media): every RTP packet of
// the peer's audio and video tracks goes back through this side's sender
// of the same transceiver, which puts its own SSRC and negotiated payload
// type on it and keeps the sequence numbers running; the payloads are
// untouched, so the tester checks that its own come back byte for byte.
if (args.mode === 'media-echo') {
  if (args.stack !== 'werift') throw new Error('--mode media-echo needs --stack werift (RTP forwarding)');
  if (args.role === 'offerer') {
    for (const kind of ['audio', 'video']) pc.addTransceiver(kind, { direction: 'sendrecv' });
  }
  pc.ontrack = ({ track, transceiver }) => {
    log('remote ' + track.kind + ' track');
    let echoed = 0;
    track.onReceiveRtp.subscribe((rtp) => {
      if (++echoed % 100 === 0) log(echoed + ' RTP packets of ' + track.kind + ' echoed');
      transceiver.sender.sendRtp(rtp).catch((e) => log('echo ' + track.kind + ': ' + e.message));
    });
  };
}

if (args.mode === 'echo') {
  echo(negotiated);
  if (control) echo(control);
  pc.ondatachannel = (ev) => { log('remote channel ' + ev.channel.label); echo(ev.channel); };
} else {
  pc.ondatachannel = (ev) => { log('remote channel (ignored by tester) ' + ev.channel.label); };
}

// ---- test helpers ----
// Queues incoming messages of one channel; next() resolves with the next one.
function inbox(ch) {
  const q = [], waiters = [];
  ch.binaryType = 'arraybuffer';
  ch.addEventListener('message', (ev) => {
    const d = STACK.data(ev.data);
    if (waiters.length) waiters.shift()(d); else q.push(d);
  });
  return {
    next(ms) {
      if (q.length) return Promise.resolve(q.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => { const i = waiters.indexOf(f); if (i >= 0) waiters.splice(i, 1); reject(new Error('no message within ' + ms + ' ms')); }, ms);
        const f = (d) => { clearTimeout(t); resolve(d); };
        waiters.push(f);
      });
    },
    pending: () => q.length,
  };
}
function waitOpen(ch, ms) {
  if (ch.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('channel ' + ch.label + ' not open within ' + ms + ' ms (state ' + ch.readyState + ')')), ms);
    ch.addEventListener('open', () => { clearTimeout(t); resolve(); });
  });
}
function pattern(n, seed) {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff; }
  return b;
}
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
const asBytes = (d) => (typeof d === 'string' ? null : new Uint8Array(d));
function expect(cond, what) { if (!cond) throw new Error(what); }

// Asks the remote side for its view of the channel. Returns null if the
// remote is a pure echo peer (it sent "__dcinfo__" back).
async function remoteInfo(ch, box, ms) {
  ch.send('__dcinfo__');
  const r = await box.next(ms);
  if (r === '__dcinfo__') return null;
  expect(typeof r === 'string', 'dcinfo reply is not text');
  return JSON.parse(r).dcinfo;
}
function checkInfo(info, want, notes) {
  if (!info) { notes.push('remote params not checked (plain echo)'); return; }
  for (const k of Object.keys(want)) {
    expect(info[k] === want[k], 'remote ' + k + ' = ' + JSON.stringify(info[k]) + ', want ' + JSON.stringify(want[k]));
  }
}

async function openChannel(label, init, ms) {
  const ch = pc.createDataChannel(label, init);
  const box = inbox(ch);
  await waitOpen(ch, ms);
  return { ch, box };
}

const channels = {};
async function getChannel(key, label, init, ms) {
  if (!channels[key]) channels[key] = await openChannel(label, init, ms);
  return channels[key];
}
let negotiatedBox = null;

async function runCase(name, ms) {
  const notes = [];
  switch (name) {
    case 'text': {
      const { ch, box } = await getChannel('text', 'text', {}, ms);
      const s = 'Hello, data channel! héllo wörld ✓ 日本語 🚀 ' + 'x'.repeat(100);
      ch.send(s);
      const r = await box.next(ms);
      expect(typeof r === 'string', 'echo is not text');
      expect(r === s, 'text differs');
      break;
    }
    case 'text-empty': {
      const { ch, box } = await getChannel('text', 'text', {}, ms);
      ch.send('');
      const r = await box.next(ms);
      expect(typeof r === 'string', 'echo is not text');
      expect(r === '', 'got ' + JSON.stringify(r).slice(0, 40));
      break;
    }
    case 'binary-0': case 'binary-1': case 'binary-64000': case 'binary-262144': {
      const n = Number(name.split('-')[1]);
      const { ch, box } = await getChannel('binary', 'binary', {}, ms);
      const b = pattern(n, n + 1);
      STACK.send(ch, b);
      const r = await box.next(ms);
      const rb = asBytes(r);
      expect(rb, 'echo is text, want binary');
      expect(rb.length === n, 'echo has ' + rb.length + ' bytes, want ' + n);
      expect(sameBytes(rb, b), 'bytes differ');
      break;
    }
    case 'negotiated-5': {
      const ch = negotiated;
      await waitOpen(ch, ms);
      expect(ch.id === NEGOTIATED_ID, 'local id ' + ch.id);
      expect(ch.negotiated === true, 'local negotiated flag false');
      checkInfo(await remoteInfo(ch, negotiatedBox, ms), { id: NEGOTIATED_ID, negotiated: true }, notes);
      ch.send('over negotiated 5');
      expect((await negotiatedBox.next(ms)) === 'over negotiated 5', 'echo differs');
      break;
    }
    case 'unordered-rtx0': {
      const { ch, box } = await openChannel('unordered', { ordered: false, maxRetransmits: 0 }, ms);
      expect(ch.ordered === false, 'local ordered not false');
      checkInfo(await remoteInfo(ch, box, ms), { ordered: false, maxRetransmits: 0 }, notes);
      const N = 20, got = new Set();
      for (let i = 0; i < N; i++) ch.send('u' + i);
      const deadline = Date.now() + ms;
      while (got.size < N && Date.now() < deadline) {
        let d;
        try { d = await box.next(Math.max(1, deadline - Date.now())); } catch (e) { break; }
        expect(typeof d === 'string' && /^u\d+$/.test(d) && Number(d.slice(1)) < N, 'unexpected echo ' + String(d).slice(0, 20));
        got.add(d);
      }
      expect(got.size === N, 'received ' + got.size + '/' + N + ' distinct echoes (loopback: expect none lost)');
      ch.close();
      break;
    }
    case 'protocol-chat': {
      const { ch, box } = await openChannel('chat', { protocol: 'chat' }, ms);
      expect(ch.protocol === 'chat', 'local protocol ' + JSON.stringify(ch.protocol));
      checkInfo(await remoteInfo(ch, box, ms), { protocol: 'chat', label: 'chat' }, notes);
      ch.send('hi chat');
      expect((await box.next(ms)) === 'hi chat', 'echo differs');
      ch.close();
      break;
    }
    case 'photo': {
      // As in the codelab: send(String(len)), then 64000-byte slices.
      const { ch, box } = await openChannel('photo', {}, ms);
      const len = args['photo-bytes'];
      const img = pattern(len, 42);
      ch.send(String(len));
      const n = Math.floor(len / CHUNK);
      for (let i = 0; i < n; i++) STACK.send(ch, img.subarray(i * CHUNK, (i + 1) * CHUNK));
      if (len % CHUNK) STACK.send(ch, img.subarray(n * CHUNK));
      const head = await box.next(ms);
      expect(typeof head === 'string', 'first echo is not the length string');
      const buf = new Uint8Array(parseInt(head, 10));
      expect(buf.length === len, 'length string ' + JSON.stringify(head));
      let count = 0, chunks = 0;
      while (count < buf.length) {
        const d = asBytes(await box.next(ms));
        expect(d, 'text inside the chunk stream');
        expect(count + d.length <= buf.length, 'overrun');
        buf.set(d, count);
        count += d.length;
        chunks++;
      }
      expect(chunks === n + (len % CHUNK ? 1 : 0), 'chunk count ' + chunks);
      expect(sameBytes(buf, img), 'photo bytes differ');
      notes.push(len + ' bytes in ' + chunks + ' chunks');
      ch.close();
      break;
    }
    case 'ordered-burst': {
      const { ch, box } = await openChannel('burst', {}, ms);
      const N = 500, b = new Uint8Array(1024), dv = new DataView(b.buffer);
      for (let i = 0; i < N; i++) { dv.setUint32(0, i); STACK.send(ch, b); }
      for (let i = 0; i < N; i++) {
        const d = await box.next(ms);
        expect(typeof d !== 'string' && d.byteLength === 1024, 'bad echo size');
        const seq = new DataView(d).getUint32(0);
        expect(seq === i, 'message ' + i + ' arrived as ' + seq);
      }
      ch.close();
      break;
    }
    case 'lifetime-1000': {
      const { ch, box } = await openChannel('lifetime', { ordered: false, maxPacketLifeTime: 1000 }, ms);
      checkInfo(await remoteInfo(ch, box, ms), { ordered: false, maxPacketLifeTime: 1000, maxRetransmits: null }, notes);
      ch.send('pl');
      expect((await box.next(ms)) === 'pl', 'echo differs');
      ch.close();
      break;
    }
    case 'close': {
      const { ch, box } = await openChannel('close-me', {}, ms);
      ch.send('bye-channel');
      expect((await box.next(ms)) === 'bye-channel', 'echo differs');
      const closed = new Promise((resolve) => ch.addEventListener('close', resolve));
      ch.close();
      await Promise.race([closed, sleep(ms).then(() => { throw new Error('no close event within ' + ms + ' ms'); })]);
      expect(ch.readyState === 'closed', 'readyState ' + ch.readyState);
      break;
    }
    default:
      throw new Error('unknown case');
  }
  return notes;
}

let testsDone = false;
async function runTests() {
  const ms = args['case-timeout'] * 1000;
  negotiatedBox = inbox(negotiated);
  const want = args.cases === 'all' ? CASES.map((c) => c[0]) : String(args.cases).split(',');
  // wait for the transport: the negotiated channel opens with the association
  await waitOpen(negotiated, Math.max(ms, 20000));
  let pass = 0, fail = 0;
  for (const name of want) {
    const desc = (CASES.find((c) => c[0] === name) || [name, '?'])[1];
    const t0 = Date.now();
    try {
      const notes = await runCase(name, ms);
      pass++;
      console.log('PASS ' + name + ' (' + (Date.now() - t0) + ' ms) ' + desc + (notes.length ? ' [' + notes.join('; ') + ']' : ''));
    } catch (e) {
      fail++;
      console.log('FAIL ' + name + ': ' + (e && e.message ? e.message : e) + ' -- ' + desc);
    }
  }
  testsDone = true;
  console.log(pass + ' passed, ' + fail + ' failed');
  send({ type: 'bye' });
  await sleep(200);
  finish(fail ? 1 : 0);
}

function finish(code) {
  if (finished) return;
  finished = true;
  clearTimeout(hardStop);
  try { pc.close(); } catch (e) { /* ignore */ }
  try { ws.close(); } catch (e) { /* ignore */ }
  setTimeout(() => process.exit(code), 100);
}

ws.on('open', async () => {
  log('signaling connected ' + args.url);
  if (args.mode === 'test') runTests().catch((e) => { console.log('FAIL setup: ' + e.message); console.log('0 passed, 1 failed'); finish(1); });
  if (args.role === 'offerer') {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    send({ type: 'offer', sdp: pc.localDescription.sdp });
  }
});
