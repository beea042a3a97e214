// Capture real SDP offers/answers and trickled candidates from headless Chromium.
//
//   node capture-sdp.mjs OUTDIR
//
// Writes OUTDIR/*.sdp (one session description each) and OUTDIR/candidates.txt
// (one trickled `candidate:` value a line, as RTCIceCandidate.candidate gives it).
// The page is served from 127.0.0.1 on an ephemeral port and opened as
// http://localhost:PORT so it is a secure context (getUserMedia needs one).
// Everything stays on this machine: ICE gathering uses no STUN/TURN server.

import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node capture-sdp.mjs OUTDIR');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const PAGE = `<!doctype html><meta charset="utf-8"><title>sdp capture</title><p>sdp capture</p>`;

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(PAGE);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const port = server.address().port;

// Runs in the page with media permission: every kind of description.
const MAIN = async () => {
  const out = {};
  const candidates = [];

  // Resolves once ICE gathering is complete; collects trickled candidates.
  const gathered = (pc, sink) =>
    new Promise((ok) => {
      pc.addEventListener('icecandidate', (e) => {
        if (e.candidate && e.candidate.candidate) sink?.push(e.candidate.candidate);
        if (!e.candidate) ok();
      });
      if (pc.iceGatheringState === 'complete') ok();
    });

  // Data-only offer and answer, before and after gathering.
  {
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    a.createDataChannel('data');
    const offer = await a.createOffer();
    out['offer-data'] = offer.sdp;
    const aDone = gathered(a, candidates);
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    out['answer-data'] = answer.sdp;
    const bDone = gathered(b, candidates);
    await b.setLocalDescription(answer);
    await Promise.all([aDone, bDone]);
    out['offer-data-gathered'] = a.localDescription.sdp;
    out['answer-data-gathered'] = b.localDescription.sdp;
    a.close();
    b.close();
  }

  // Offer audio+video+data (fake devices) and its answer from a second PC.
  {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    for (const t of stream.getTracks()) a.addTrack(t, stream);
    a.createDataChannel('chat');
    const offer = await a.createOffer();
    out['offer-audio-video-data'] = offer.sdp;
    const aDone = gathered(a, candidates);
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const bStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    for (const t of bStream.getTracks()) b.addTrack(t, bStream);
    const answer = await b.createAnswer();
    out['answer-audio-video-data'] = answer.sdp;
    const bDone = gathered(b);
    await b.setLocalDescription(answer);
    await Promise.all([aDone, bDone]);
    out['offer-audio-video-data-gathered'] = a.localDescription.sdp;
    out['answer-audio-video-data-gathered'] = b.localDescription.sdp;
    a.close();
    b.close();
    for (const t of [...stream.getTracks(), ...bStream.getTracks()]) t.stop();
  }

  // Transceivers without devices: recvonly audio, sendrecv video.
  {
    const a = new RTCPeerConnection();
    a.addTransceiver('audio', { direction: 'recvonly' });
    a.addTransceiver('video', { direction: 'sendrecv' });
    out['offer-transceivers'] = (await a.createOffer()).sdp;
    a.close();
  }

  // Simulcast offer: three RIDs on one video sender.
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const a = new RTCPeerConnection();
    a.addTransceiver(stream.getVideoTracks()[0], {
      direction: 'sendonly',
      streams: [stream],
      sendEncodings: [
        { rid: 'q', scaleResolutionDownBy: 4.0 },
        { rid: 'h', scaleResolutionDownBy: 2.0 },
        { rid: 'f' },
      ],
    });
    out['offer-simulcast'] = (await a.createOffer()).sdp;
    a.close();
    for (const t of stream.getTracks()) t.stop();
  } catch (e) {
    out['error-simulcast'] = String(e);
  }

  return { out, candidates };
};

// Runs in the page without media permission: data-only offer and answer whose
// host candidates are mDNS names.
const MDNS = async () => {
  const out = {};
  const candidates = [];
  const gathered = (pc, sink) =>
    new Promise((ok) => {
      pc.addEventListener('icecandidate', (e) => {
        if (e.candidate && e.candidate.candidate) sink?.push(e.candidate.candidate);
        if (!e.candidate) ok();
      });
      if (pc.iceGatheringState === 'complete') ok();
    });
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  a.createDataChannel('mdns');
  const offer = await a.createOffer();
  const aDone = gathered(a, candidates);
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  const answer = await b.createAnswer();
  const bDone = gathered(b);
  await b.setLocalDescription(answer);
  await Promise.all([aDone, bDone]);
  out['offer-data-mdns-gathered'] = a.localDescription.sdp;
  out['answer-data-mdns-gathered'] = b.localDescription.sdp;
  a.close();
  b.close();
  return { out, candidates };
};

// --use-fake-ui-for-media-stream makes Chromium treat every page as granted
// camera/microphone, and so it shows raw host addresses. A second pass without
// it captures host candidates hidden behind mDNS `<uuid>.local` names
// (draft-ietf-mmusic-mdns-ice-candidates; RFC 8839 §5.1 allows FQDNs).
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];
const MDNS_FLAGS = FLAGS.filter((f) => f !== '--use-fake-ui-for-media-stream');

/** Launches Chromium with a fresh profile, opens the page, runs `fn` in it. */
async function inChromium(args, fn) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'realtimer-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      timeout: 60_000,
      args,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`http://localhost:${port}/`);
    return await page.evaluate(fn);
  } finally {
    if (context) await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

try {
  const main = await inChromium(FLAGS, MAIN);
  const mdns = await inChromium(MDNS_FLAGS, MDNS);
  const out = { ...main.out, ...mdns.out };
  const candidates = [...main.candidates, ...mdns.candidates];

  mkdirSync(outDir, { recursive: true });
  let n = 0;
  for (const [name, sdp] of Object.entries(out)) {
    if (name.startsWith('error-')) {
      console.error(`${name}: ${sdp}`);
      continue;
    }
    writeFileSync(join(outDir, `${name}.sdp`), sdp);
    n += 1;
  }
  writeFileSync(join(outDir, 'candidates.txt'), candidates.map((c) => c + '\n').join(''));
  console.log(`wrote ${n} SDPs and ${candidates.length} candidates to ${resolve(outDir)}`);
} finally {
  server.close();
}
