// What media-interop.html and media-bench.html share (the tests' page
// server serves it at /media-page.js beside the page): the socket to the
// Rust PeerConnection and the signaling on it, the checks and the result,
// the test pattern's counter band (crates/codecs/src/source.rs), and a
// remote audio track played into WebAudio.
//
// Signaling: {type:'offer'|'answer', sdp} and trickled candidates both
// ways; Rust's {type:'ping', t} is answered with the page's clock
// (performance.timeOrigin + now) so Rust can map one clock on the other;
// any other message goes to fromRust (waitFromRust takes it). The page
// ends with {type: 'result', passed, failed, ...} on the socket and in
// window.__result (dc-interop.mjs waits for it).
const params = new URLSearchParams(location.search);
const results = { passed: [], failed: [] };
const log = (...a) => console.log(...a);
const ws = new WebSocket(`ws://${location.host}/ws`);
const send = (m) => ws.send(JSON.stringify(m));
const pc = new RTCPeerConnection();
const fromRust = [];
let onFromRust = () => {};
const epochNow = () => performance.timeOrigin + performance.now();
pc.onicecandidate = (e) => send({ type: 'candidate', candidate: e.candidate ? e.candidate.candidate : '',
  sdpMid: e.candidate ? e.candidate.sdpMid : '0', sdpMLineIndex: e.candidate ? e.candidate.sdpMLineIndex : 0 });
// Rust trickles its candidates as it gathers them, which may be before
// its description reaches the page: they wait for it (behind an impaired
// relay, Rust's one candidate is the only way in).
let early = [];
const addCandidate = (m) => pc.addIceCandidate(m.candidate ? m : null).catch((e) => log('addIceCandidate', e.message));
async function setRemote(m) {
  await pc.setRemoteDescription(m);
  for (const c of early) await addCandidate(c);
  early = null;
}
ws.onmessage = async (ev) => {
  const m = JSON.parse(ev.data);
  if (m.type === 'ping') {
    send({ type: 'pong', t: m.t, page: epochNow() });
  } else if (m.type === 'offer') {
    await setRemote(m);
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: 'answer', sdp: pc.localDescription.sdp });
  } else if (m.type === 'answer') {
    await setRemote(m);
  } else if (m.type === 'candidate') {
    if (early) early.push(m); else await addCandidate(m);
  } else {
    fromRust.push(m);
    onFromRust();
  }
};
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
function check(name, cond, detail) {
  if (cond) { results.passed.push(name); log('PASS', name, detail); }
  else { results.failed.push(`${name}: ${detail}`); log('FAIL', name, detail); }
}
function finish(extra = {}) {
  const result = { type: 'result', ...results, ...extra };
  send(result);
  window.__result = result;
}
async function waitFromRust(type) {
  for (;;) {
    const m = fromRust.find((x) => x.type === type);
    if (m) return m;
    await new Promise((ok) => { onFromRust = ok; });
  }
}
// Runs `body` once the socket is open; a throw fails the page.
function run(body) {
  ws.onopen = () => body().catch((e) => { check('page', false, e.message); finish(); });
}

// The test pattern's counter band: 16 blocks of the counter's bits, then
// a row of their complement, in limited-range white and black; a square
// moves below it.
function drawPattern(ctx, w, h, counter) {
  const blockW = Math.floor(w / 16), rowH = Math.max(Math.floor(h / 12), 8);
  ctx.fillStyle = 'rgb(60,60,60)';
  ctx.fillRect(0, 0, w, h);
  for (let bit = 0; bit < 16; bit++) {
    const set = ((counter >> (15 - bit)) & 1) === 1;
    ctx.fillStyle = set ? 'rgb(235,235,235)' : 'rgb(16,16,16)';
    ctx.fillRect(bit * blockW, 0, blockW, rowH);
    ctx.fillStyle = set ? 'rgb(16,16,16)' : 'rgb(235,235,235)';
    ctx.fillRect(bit * blockW, rowH, blockW, rowH);
  }
  const side = Math.max(Math.floor(h / 6), 4);
  ctx.fillStyle = 'rgb(235,235,235)';
  ctx.fillRect(((counter % 64) * (w - side)) / 63, 2 * rowH + (h - 2 * rowH - side) / 2, side, side);
}

// The counter drawn into the top band of the picture, or null when the
// blocks do not read as the bits and their complement.
function readCounter(ctx, w, h) {
  const blockW = Math.floor(w / 16), rowH = Math.max(Math.floor(h / 12), 8);
  if (blockW < 4) return null;
  const img = ctx.getImageData(0, 0, w, 2 * rowH).data;
  const level = (bit, row) => {
    const x0 = bit * blockW + (blockW >> 2), y0 = row * rowH + (rowH >> 2);
    let sum = 0, n = 0;
    for (let y = y0; y < y0 + (rowH >> 1); y++) {
      for (let x = x0; x < x0 + (blockW >> 1); x++) {
        const i = (y * w + x) * 4;
        sum += 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
        n++;
      }
    }
    return sum / n;
  };
  let counter = 0;
  for (let bit = 0; bit < 16; bit++) {
    const set = level(bit, 0) > 128, complement = level(bit, 1) > 128;
    if (set === complement) return null;
    counter = (counter << 1) | (set ? 1 : 0);
  }
  return counter;
}

// Calls onFrame(counter, display time on the performance clock) once for
// each new counter the video element shows, onUnreadable() for each
// frame whose band does not read.
function watchCounters(el, onFrame, onUnreadable = () => {}) {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let last = null;
  const cb = (now, meta) => {
    const shown = meta.expectedDisplayTime || now;
    const w = el.videoWidth, h = el.videoHeight;
    if (w && h) {
      canvas.width = w; canvas.height = h;
      ctx.drawImage(el, 0, 0, w, h);
      const c = readCounter(ctx, w, h);
      if (c === null) onUnreadable();
      else if (c !== last) { last = c; onFrame(c, shown); }
    }
    el.requestVideoFrameCallback(cb);
  };
  el.requestVideoFrameCallback(cb);
}

// A remote audio track as a source node in a running AudioContext. It
// reaches WebAudio (and its jitter buffer is pulled) only while a media
// element plays it (Chromium), so a muted audio element plays it.
const playing = [];
async function audioSource(track) {
  const el = new Audio();
  el.muted = true;
  el.srcObject = new MediaStream([track]);
  el.play().catch((e) => log('audio play', e.message));
  playing.push(el);
  const actx = new AudioContext();
  await actx.resume();
  return actx.createMediaStreamSource(new MediaStream([track]));
}
