// Headless Chromium with its fake camera at 1280x720 as the other end of
// a video call the caller runs, reporting both directions' stats:
//
//   SIMULCAST=1 node chromium-video-peer.mjs   three layers, send only
//   node chromium-video-peer.mjs               one stream, send and receive
//   ANSWER=1 node chromium-video-peer.mjs      answers the caller's offer,
//                                              receive only
//
// With SIMULCAST=1 the camera goes out as three simulcast layers
// (sendEncodings with rids q, h, f: a quarter, a half and full size, RFC
// 8853); otherwise as one stream on a sendrecv transceiver, and what the
// peer sends back is received and decoded.
//
// One JSON object a line on stdout:
//   {"offer": SDP}        the offer, ICE gathered (no trickle);
// then reads one line {"answer": SDP} on stdin (with ANSWER=1: reads
// {"offer": SDP} first and prints {"answer": SDP}), and every STATS_MS
// (default 1000) prints
//   {"stats": {"t": s, "layers": {rid: {...}}, "inbound": {...},
//              "available": bps, "rtt": s}}
// with each outgoing stream's outbound-rtp frameWidth, frameHeight,
// framesEncoded, bytesSent, nackCount, retransmittedBytesSent and
// qualityLimitationReason (under "layers", by rid, "-" without one), the
// video inbound-rtp's bytesReceived, framesDecoded, nackCount and
// packetsLost (every video inbound-rtp's under "inbounds", with its ssrc
// and frame size), and the candidate pair's availableOutgoingBitrate and
// currentRoundTripTime; it stops when stdin closes (or after
// SECONDS_LIMIT, default 120) and exits 0.
//
// The sender keeps its resolution under load (degradationPreference
// maintain-resolution): on a loaded machine Chromium would otherwise
// scale the layers down, and the simulcast test checks their sizes.
import { launchChromium, FAKE_MEDIA } from './launch.mjs';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

const seconds = Number(process.env.SECONDS_LIMIT || 120);
const statsMs = Number(process.env.STATS_MS || 1000);
const simulcast = process.env.SIMULCAST === '1';
const answering = process.env.ANSWER === '1';
const PAGE = '<!doctype html><meta charset="utf-8"><title>simulcast</title>';
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(PAGE);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));

const browser = await launchChromium(FAKE_MEDIA);
const page = await browser.newPage();
page.on('console', (m) => console.error(`page: ${m.text()}`));
await page.goto(`http://localhost:${server.address().port}/`);

const lines = createInterface({ input: process.stdin });
const iterator = lines[Symbol.asyncIterator]();
const gathered = () => page.evaluate(() => new Promise((ok) => {
  const pc = window.pc;
  if (pc.iceGatheringState === 'complete') ok();
  pc.addEventListener('icegatheringstatechange', () => {
    if (pc.iceGatheringState === 'complete') ok();
  });
}));

// What the peer sends is decoded (framesDecoded counts it).
await page.evaluate(() => {
  window.playTracks = (pc) => pc.addEventListener('track', (e) => {
    const video = document.createElement('video');
    video.muted = true;
    video.srcObject = new MediaStream([e.track]);
    document.body.append(video);
    video.play().catch(() => {});
  });
});

if (answering) {
  const first = await iterator.next();
  if (first.done) process.exit(1);
  const { offer } = JSON.parse(first.value);
  await page.evaluate(async (sdp) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    window.playTracks(pc);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
  }, offer);
  await gathered();
  const answer = await page.evaluate(() => window.pc.localDescription.sdp);
  console.log(JSON.stringify({ answer }));
}

if (!answering) await page.evaluate(async (simulcast) => {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { exact: 1280 }, height: { exact: 720 }, frameRate: 30 },
  });
  const pc = new RTCPeerConnection();
  window.pc = pc;
  const layers = [
    { rid: 'q', scaleResolutionDownBy: 4 },
    { rid: 'h', scaleResolutionDownBy: 2 },
    { rid: 'f' },
  ];
  const transceiver = pc.addTransceiver(stream.getVideoTracks()[0], {
    direction: simulcast ? 'sendonly' : 'sendrecv',
    streams: [stream],
    sendEncodings: simulcast ? layers : undefined,
  });
  window.playTracks(pc);
  const params = transceiver.sender.getParameters();
  params.degradationPreference = 'maintain-resolution';
  await transceiver.sender.setParameters(params);
  // VP8 first: the test reads its key frames' sizes.
  const vp8 = RTCRtpSender.getCapabilities('video').codecs.filter(
    (c) => c.mimeType === 'video/VP8' || c.mimeType === 'video/rtx',
  );
  transceiver.setCodecPreferences(vp8);
  await pc.setLocalDescription(await pc.createOffer());
}, simulcast);
if (!answering) {
  await gathered();
  const offer = await page.evaluate(() => window.pc.localDescription.sdp);
  console.log(JSON.stringify({ offer }));
  const first = await iterator.next();
  if (first.done) process.exit(1);
  const { answer } = JSON.parse(first.value);
  await page.evaluate((sdp) => window.pc.setRemoteDescription({ type: 'answer', sdp }), answer);
}

let open = true;
(async () => {
  for await (const _ of iterator) { /* ignore */ }
  open = false;
})();
const start = Date.now();
while (open && Date.now() - start < seconds * 1000) {
  await new Promise((r) => setTimeout(r, statsMs));
  const stats = await page.evaluate(async () => {
    const report = await window.pc.getStats();
    const out = {
      layers: {}, inbound: null, inbounds: [], available: null, rtt: null,
      state: window.pc.connectionState,
    };
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.inbounds.push({
          ssrc: s.ssrc, framesDecoded: s.framesDecoded, bytesReceived: s.bytesReceived,
          frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        });
        out.inbound = {
          bytesReceived: s.bytesReceived, framesDecoded: s.framesDecoded,
          nackCount: s.nackCount, packetsLost: s.packetsLost,
          frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        };
      }
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out.layers[s.rid ?? '-'] = {
          frameWidth: s.frameWidth, frameHeight: s.frameHeight,
          framesEncoded: s.framesEncoded, bytesSent: s.bytesSent, active: s.active,
          qualityLimitationReason: s.qualityLimitationReason,
          nackCount: s.nackCount, retransmittedBytesSent: s.retransmittedBytesSent,
        };
      }
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        out.available = s.availableOutgoingBitrate ?? null;
        out.rtt = s.currentRoundTripTime ?? null;
      }
    });
    return out;
  });
  stats.t = (Date.now() - start) / 1000;
  console.log(JSON.stringify({ stats }));
}
await browser.close();
server.close();
process.exit(0);
