// libwebrtc (Node's @roamhq/wrtc) calls `realtimer echo` through
// `realtimer serve`'s /ws signaling: it sends a video track of synthetic
// I420 frames (RTCVideoSource) and an audio track of a 440 Hz tone
// (RTCAudioSource, 10 ms of 48 kHz PCM at a time), and checks that frames
// of the echoed video come back decoded (RTCVideoSink) and that the echoed
// audio, decoded by libwebrtc (RTCAudioSink), carries the tone; then it
// hangs up with bye and checks that the echo exits 0.
//
//   NODE_PATH=<dir with @roamhq/wrtc and ws> node echo-call.cjs URL REALTIMER
//
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
'use strict';
const { RTCPeerConnection, nonstandard } = require('@roamhq/wrtc');
const WebSocket = require('ws');
const { spawn } = require('node:child_process');

const [base, realtimer] = process.argv.slice(2);
const room = `wrtc-echo-${process.pid}-${Date.now()}`;
let passed = 0;
let failed = 0;
const ok = (name, cond, detail = '') => {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
};
const logs = [];
const t0 = Date.now();
const log = (line) => logs.push(`${((Date.now() - t0) / 1000).toFixed(3).padStart(8)} ${line}`);

function finish() {
  if (failed) for (const line of logs) console.log(`  ${line}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// The echo joins first and offers (the room's creator offers on ready).
const echo = spawn(realtimer, ['echo', '--server', base, '--room', room, '--loopback'], {
  env: { ...process.env, REALTIMER_LOG: 'info' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let echoOut = '';
for (const s of [echo.stdout, echo.stderr]) {
  s.on('data', (d) => { echoOut += d; for (const l of String(d).split('\n')) if (l) log(`echo: ${l}`); });
}
const echoExit = new Promise((resolve) => echo.on('exit', (code, signal) => resolve(code ?? signal)));

const pc = new RTCPeerConnection();
const source = new nonstandard.RTCVideoSource();
const track = source.createTrack();
pc.addTrack(track);
const width = 320;
const height = 240;
const frame = new Uint8ClampedArray(width * height * 1.5);
let tick = 0;
const timer = setInterval(() => {
  // A moving gradient, so the encoder has something to encode.
  tick++;
  for (let i = 0; i < width * height; i++) frame[i] = (i + tick * 4) & 0xff;
  frame.fill(128, width * height);
  source.onFrame({ width, height, data: frame });
}, 33);

// 440 Hz at 48 kHz, mono, 10 ms a call, as libwebrtc's audio device would.
const audioSource = new nonstandard.RTCAudioSource();
const audioTrack = audioSource.createTrack();
pc.addTrack(audioTrack);
const RATE = 48000;
const TONE = 440;
let sampleIndex = 0;
const audioTimer = setInterval(() => {
  const samples = new Int16Array(RATE / 100);
  for (let i = 0; i < samples.length; i++, sampleIndex++) {
    samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * TONE * sampleIndex) / RATE));
  }
  audioSource.onData({ samples, sampleRate: RATE, bitsPerSample: 16, channelCount: 1, numberOfFrames: samples.length });
}, 10);

// Goertzel: the power of `freq` in the first channel of `pcm`.
function power(pcm, channels, rate, freq) {
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < pcm.length; i += channels) {
    const s0 = pcm[i] + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - k * s1 * s2;
}

// Echoed audio: 10 ms chunks; a chunk counts when 440 Hz is over 100x the
// power of 1 kHz and the chunk is not silent.
let chunksBack = 0;
let toneChunks = 0;
let audioFormat = '';

let framesBack = 0;
let frameSize = '';
pc.ontrack = (e) => {
  log(`track ${e.track.kind}`);
  if (e.track.kind === 'audio') {
    const audioSink = new nonstandard.RTCAudioSink(e.track);
    audioSink.ondata = ({ samples, sampleRate, channelCount }) => {
      chunksBack++;
      audioFormat = `${sampleRate} Hz, ${channelCount} ch`;
      const loud = samples.reduce((m, v) => Math.max(m, Math.abs(v)), 0) > 1000;
      if (loud && power(samples, channelCount, sampleRate, TONE) > 100 * power(samples, channelCount, sampleRate, 1000)) {
        toneChunks++;
      }
    };
    return;
  }
  if (e.track.kind !== 'video') return;
  const sink = new nonstandard.RTCVideoSink(e.track);
  sink.onframe = ({ frame: f }) => { framesBack++; frameSize = `${f.width}x${f.height}`; };
};
pc.onconnectionstatechange = () => log(`connection ${pc.connectionState}`);

const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`);
const send = (data) => ws.send(JSON.stringify({ type: 'message', data }));
pc.onicecandidate = (e) => {
  if (e.candidate) send({ type: 'candidate', candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex });
};
let chain = Promise.resolve();
ws.on('message', (raw) => {
  const m = JSON.parse(String(raw));
  log(`signaling ${m.type}${m.data?.type ? ` ${m.data.type}` : ''}`);
  if (m.type !== 'message') return;
  const data = m.data;
  chain = chain.then(async () => {
    if (data.type === 'offer') {
      await pc.setRemoteDescription({ type: 'offer', sdp: data.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      send({ type: 'answer', sdp: answer.sdp });
    } else if (data.type === 'candidate') {
      await pc.addIceCandidate({ candidate: data.candidate, sdpMid: data.sdpMid, sdpMLineIndex: data.sdpMLineIndex });
    }
  }).catch((e) => log(`error ${e}`));
});

async function waitFor(what, f, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (f()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`timed out waiting for ${what}`);
  return false;
}

(async () => {
  await waitFor('the echo to create the room', () => echoOut.includes('created the room'), 15000);
  await new Promise((r) => (ws.readyState === WebSocket.OPEN ? r() : ws.once('open', r)));
  ws.send(JSON.stringify({ type: 'join', room }));
  await waitFor('echoed frames', () => framesBack >= 30, 30000);
  ok('libwebrtc decodes its video echoed by realtimer (30 frames)', framesBack >= 30, `frames=${framesBack}`);
  ok('the echoed frames keep their size', frameSize === `${width}x${height}`, frameSize);
  await waitFor('the echoed tone', () => toneChunks >= 100, 30000);
  ok('libwebrtc plays its 440 Hz tone echoed by realtimer (1 s of it)', toneChunks >= 100,
    `${toneChunks} of ${chunksBack} chunks with the tone (${audioFormat})`);
  send({ type: 'bye' });
  const code = await Promise.race([echoExit, new Promise((r) => setTimeout(() => r('still running'), 10000))]);
  ok('bye makes the echo exit 0', code === 0, `exit: ${code}`);
  clearInterval(timer);
  clearInterval(audioTimer);
  track.stop();
  audioTrack.stop();
  pc.close();
  ws.close();
  echo.kill();
  finish();
})().catch((e) => { ok('the call ran', false, String(e)); echo.kill(); finish(); });
