#!/usr/bin/env node
// Captures the SDP a native stack writes, for crates/sdp/tests/fixtures:
// its offer with a data channel only and with audio, video and a data
// channel, and its answers to the two offers of OFFERS_DIR (offer-data.sdp
// and offer-audio-video-data.sdp, Chromium's), each after ICE gathering.
//
//   node capture-sdp.js --stack wrtc|werift --out DIR --offers OFFERS_DIR
//
// Writes DIR/{offer,answer}-{data,audio-video-data}.sdp. Run it inside
// run-netns.sh so only loopback candidates appear.
'use strict';
const fs = require('fs');
const path = require('path');
const { parseArgs } = require('./common');
const stack = require('./stack');

const args = parseArgs(process.argv.slice(2), { stack: 'wrtc' });
const s = stack(args.stack);

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => pc.iceGatheringState === 'complete' && resolve();
    if (pc.onIceGatheringStateChange) pc.onIceGatheringStateChange.subscribe(done); // werift
    else pc.onicegatheringstatechange = done;
    setTimeout(resolve, 3000);
  });
}

async function offer(media) {
  const pc = s.peerConnection();
  if (media) {
    pc.addTransceiver('audio', { direction: 'sendrecv' });
    pc.addTransceiver('video', { direction: 'sendrecv' });
  }
  pc.createDataChannel('capture');
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const sdp = pc.localDescription.sdp;
  pc.close();
  return sdp;
}

async function answer(remote) {
  const pc = s.peerConnection();
  await pc.setRemoteDescription({ type: 'offer', sdp: remote });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  const sdp = pc.localDescription.sdp;
  pc.close();
  return sdp;
}

(async () => {
  fs.mkdirSync(args.out, { recursive: true });
  const write = (name, sdp) => fs.writeFileSync(path.join(args.out, name), sdp);
  for (const [kind, media] of [['data', false], ['audio-video-data', true]]) {
    write(`offer-${kind}.sdp`, await offer(media));
    write(`answer-${kind}.sdp`, await answer(fs.readFileSync(path.join(args.offers, `offer-${kind}.sdp`), 'utf8')));
  }
  console.log('captured ' + args.stack);
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
