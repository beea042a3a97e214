// Drives the web app (web/) in headless Chromium with fake media devices.
//
//   node webapp.mjs URL OUTDIR uc1 uc2 uc3 uc4 uc5 uc6 uc7
//
// URL is the server's base, e.g. http://localhost:8080 (localhost, so pages
// are a secure context). With SECOND_BASE set, UC5's second tab opens on that
// server instead (two servers sharing rooms through Redis). Saves a screenshot of each page to OUTDIR. Prints
// one line per check and "N passed, N failed"; exits 1 if any failed.
import { FAKE_MEDIA, launchChromium } from './launch.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

const [base, outDir, ...cases] = process.argv.slice(2);
if (!base || !outDir || cases.length === 0) {
  console.error('usage: node webapp.mjs URL OUTDIR uc1 [uc2 ...]');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const browser = await launchChromium(FAKE_MEDIA);
const context = await browser.newContext();

let passed = 0;
let failed = 0;
function ok(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}

const secondBase = process.env.SECOND_BASE || base;

// Every page's console, with times, printed when the case that opened it
// fails: the signaling log (room events, messages sent and received, states)
// is what tells a lost offer from a lost candidate.
const t0 = Date.now();
let pageLogs = [];
let pageCount = 0;

async function open(path, at = base) {
  const page = await context.newPage();
  const tag = `tab${++pageCount} ${path.split('?')[0]}`;
  const lines = [];
  pageLogs.push({ tag, lines });
  const stamp = () => ((Date.now() - t0) / 1000).toFixed(3).padStart(8);
  page.on('console', (m) => lines.push(`${stamp()} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`${stamp()} page error: ${e}`));
  await page.goto(new URL(path, at).href);
  return page;
}

function printPageLogs() {
  for (const { tag, lines } of pageLogs) {
    console.log(`--- console of ${tag} (${lines.length} lines) ---`);
    for (const line of lines) console.log(`  ${line}`);
  }
}

const shot = (page, name) => page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
const room = (uc) => `${uc}-${process.pid}-${Date.now()}`;

// framesDecoded of the first inbound video stream of a peer connection.
const FRAMES = `(async (pc) => {
  const stats = await pc.getStats();
  let n = 0;
  stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n = Math.max(n, s.framesDecoded || 0); });
  return n;
})`;

// Polls framesDecoded until it is positive or `ms` pass; returns the last value.
async function framesDecoded(page, pcExpr, ms = 20000) {
  const end = Date.now() + ms;
  let n = 0;
  while (Date.now() < end) {
    n = await page.evaluate(`${FRAMES}(${pcExpr})`);
    if (n > 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return n;
}

const tests = {
  async uc1() {
    const page = await open('camera.html');
    await page.click('#start');
    await page.waitForFunction(() => document.getElementById('local').videoWidth > 0, null, { timeout: 10000 });
    const w = await page.evaluate(() => document.getElementById('local').videoWidth);
    ok('UC1 the camera video plays (videoWidth > 0)', w > 0, `videoWidth=${w}`);
    await page.selectOption('#resolution', '99999x99999');
    await page.click('#start');
    await page.waitForFunction(() => document.getElementById('error').textContent !== '', null, { timeout: 10000 });
    const error = await page.textContent('#error');
    ok('UC1 an impossible constraint is shown by name', error.startsWith('OverconstrainedError'), error);
    await page.selectOption('#resolution', '640x480');
    await page.click('#start');
    await page.waitForFunction(() => document.getElementById('local').videoWidth > 0);
    await shot(page, 'uc1-camera');
  },

  async uc2() {
    const page = await open('local.html');
    await page.click('#start');
    await page.waitForFunction(() => !document.getElementById('call').disabled);
    await page.click('#call');
    await page.waitForFunction(() => window.app?.pc2);
    const frames = await framesDecoded(page, 'window.app.pc2');
    ok('UC2 the remote video is decoded (framesDecoded > 0)', frames > 0, `framesDecoded=${frames}`);
    const sdp = await page.textContent('#offer');
    ok('UC2 the offer SDP is shown', sdp.startsWith('v=0'));
    await page.waitForFunction(() => document.getElementById('remote').videoWidth > 0);
    await shot(page, 'uc2-local-call');
  },

  async uc3() {
    const page = await open('datachannel.html');
    await page.fill('#protocol', 'chat');
    await page.click('#start');
    await page.waitForFunction(() => !document.getElementById('sendButton').disabled, null, { timeout: 15000 });
    const text = 'Hello over SCTP — ☃ ' + process.pid;
    await page.fill('#send', text);
    await page.click('#sendButton');
    await page.waitForFunction((t) => document.getElementById('receive').value === t, text, { timeout: 10000 });
    ok('UC3 text arrives over the data channel', true);
    const state = await page.textContent('#state');
    ok('UC3 the channel options are applied', state.includes('protocol="chat"'), state);

    // Negotiated, unordered, maxRetransmits 0.
    await page.click('#stop');
    await page.uncheck('#ordered');
    await page.fill('#maxRetransmits', '0');
    await page.check('#negotiated');
    await page.fill('#channelId', '5');
    await page.click('#start');
    await page.waitForFunction(() => !document.getElementById('sendButton').disabled, null, { timeout: 15000 });
    await page.fill('#send', 'negotiated');
    await page.click('#sendButton');
    await page.waitForFunction(() => document.getElementById('receive').value === 'negotiated', null, { timeout: 10000 });
    const state2 = await page.textContent('#state');
    ok('UC3 a negotiated unordered channel (id 5, maxRetransmits 0) carries text',
      state2.includes('negotiated=true id=5') && state2.includes('ordered=false') && state2.includes('maxRetransmits=0'), state2);
    await shot(page, 'uc3-datachannel');
  },

  async uc4() {
    const r = room('uc4');
    const pages = [];
    for (let i = 0; i < 3; i++) {
      const page = await open(`rooms.html?room=${encodeURIComponent(r)}`);
      await page.click('#join');
      pages.push(page);
      // In order: the first creates, the second joins.
      await page.waitForFunction(() => window.app.events.length > 0, null, { timeout: 10000 });
    }
    await pages[1].waitForFunction(() => window.app.events.includes('ready'));
    const events = await Promise.all(pages.map((p) => p.evaluate(() => window.app.events)));
    ok('UC4 first tab: created, join, ready', JSON.stringify(events[0]) === '["created","join","ready"]', JSON.stringify(events[0]));
    ok('UC4 second tab: joined, ready', JSON.stringify(events[1]) === '["joined","ready"]', JSON.stringify(events[1]));
    ok('UC4 third tab gets full', JSON.stringify(events[2]) === '["full"]', JSON.stringify(events[2]));
    await shot(pages[0], 'uc4-rooms-first');
    await shot(pages[2], 'uc4-rooms-third');
    for (const p of pages) await p.close();
  },

  async uc5() {
    const r = room('uc5');
    const a = await open(`call.html?room=${encodeURIComponent(r)}`);
    await a.click('#join');
    await a.waitForFunction(() => window.app?.peer?.initiator === true, null, { timeout: 10000 });
    const b = await open(`call.html?room=${encodeURIComponent(r)}`, secondBase);
    await b.click('#join');
    for (const [name, page] of [['first', a], ['second', b]]) {
      const frames = await framesDecoded(page, 'window.app.peer.pc');
      ok(`UC5 the ${name} tab decodes the other's video (framesDecoded > 0)`, frames > 0, `framesDecoded=${frames}`);
    }
    await b.waitForFunction(() => document.getElementById('remote').videoWidth > 0);
    await b.waitForFunction(() => window.app.stats.samples.some((s) => s.inKbps > 0 && s.rttMs > 0), null, { timeout: 15000 })
      .then(() => ok('UC5 the stats panel plots received bitrate and RTT', true))
      .catch((e) => ok('UC5 the stats panel plots received bitrate and RTT', false, e.message.split('\n')[0]));
    await shot(b, 'uc5-call');
    await a.click('#hangup');
    await b.waitForFunction(() => document.getElementById('state').textContent === 'the other side hung up', null, { timeout: 10000 });
    ok('UC5 hang up sends bye to the other tab', true);
    await a.close();
    await b.close();
  },

  async uc6() {
    const r = room('uc6');
    const a = await open(`snap.html?room=${encodeURIComponent(r)}`);
    await a.click('#join');
    await a.waitForFunction(() => window.app?.peer?.initiator === true, null, { timeout: 10000 });
    const b = await open(`snap.html?room=${encodeURIComponent(r)}`);
    await b.click('#join');
    await a.waitForFunction(() => !document.getElementById('snapAndSend').disabled, null, { timeout: 20000 });
    await a.waitForFunction(() => document.getElementById('local').videoWidth > 0);
    await a.click('#snapAndSend');
    await b.waitForFunction(() => window.app.received === 1, null, { timeout: 20000 });
    const pixels = (page, id) => page.evaluate((id) => {
      const c = document.getElementById(id);
      return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }, id);
    const sent = await pixels(a, 'photo');
    const received = await pixels(b, 'received');
    const nonBlank = sent.some((v, i) => i % 4 !== 3 && v !== 0);
    let equal = sent.length === received.length;
    for (let i = 0; equal && i < sent.length; i++) equal = sent[i] === received[i];
    ok('UC6 the snapped photo is not blank', nonBlank);
    ok(`UC6 the received canvas pixels equal the sent ones (${sent.length} bytes)`, equal);
    await shot(a, 'uc6-snap-sender');
    await shot(b, 'uc6-snap-receiver');
    await a.close();
    await b.close();
  },

  async uc7() {
    const r = room('uc7');
    const a = await open(`files.html?room=${encodeURIComponent(r)}`);
    await a.click('#join');
    await a.waitForFunction(() => window.app?.peer?.initiator === true, null, { timeout: 10000 });
    const b = await open(`files.html?room=${encodeURIComponent(r)}`);
    await b.click('#join');
    await a.waitForFunction(() => !document.getElementById('send').disabled, null, { timeout: 20000 });
    // 5 MB of pseudo-random bytes (not compressible, every byte value).
    const size = 5 * 1000 * 1000;
    const buffer = Buffer.alloc(size);
    let x = 0x9e3779b9;
    for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; buffer[i] = x & 0xff; }
    const expected = createHash('sha256').update(buffer).digest('hex');
    await a.setInputFiles('#file', { name: 'five-megabytes.bin', mimeType: 'application/octet-stream', buffer });
    const started = Date.now();
    await a.click('#send');
    await b.waitForFunction(() => window.app.received.length === 1, null, { timeout: 60000 });
    const secs = (Date.now() - started) / 1000;
    await a.waitForFunction(() => window.app.sent.length === 1, null, { timeout: 30000 });
    const sent = await a.evaluate(() => window.app.sent[0]);
    const got = await b.evaluate(() => window.app.received[0]);
    ok(`UC7 5 MB file received whole (${got.size} bytes in ${secs.toFixed(2)} s)`, got.size === size, JSON.stringify(got));
    ok('UC7 SHA-256 matches on both sides and the original', sent.sha256 === expected && got.sha256 === expected,
      `sent=${sent.sha256} received=${got.sha256} expected=${expected}`);
    const info = await a.textContent('#sendInfo');
    ok('UC7 the sender shows throughput and completion', /\/s/.test(info) && /done/.test(info), info);
    await a.waitForFunction(() => window.app.stats.samples.some((s) => s.outKbps > 0), null, { timeout: 10000 })
      .then(() => ok('UC7 the stats panel plots the sent bitrate', true))
      .catch((e) => ok('UC7 the stats panel plots the sent bitrate', false, e.message.split('\n')[0]));
    await shot(a, 'uc7-files-sender');
    await shot(b, 'uc7-files-receiver');
    await a.close();
    await b.close();
  },
};

try {
  for (const c of cases) {
    if (!tests[c]) { console.log(`FAIL unknown case ${c}`); failed++; continue; }
    pageLogs = [];
    const failedBefore = failed;
    try {
      await tests[c]();
    } catch (e) {
      failed++;
      console.log(`FAIL ${c}: ${e.message.split('\n')[0]}`);
    }
    if (failed > failedBefore) printPageLogs();
  }
  const index = await open('/');
  const links = await index.$$eval('a', (as) => as.map((a) => a.getAttribute('href')));
  ok('the index links every page',
    ['camera.html', 'local.html', 'datachannel.html', 'rooms.html', 'call.html', 'snap.html', 'files.html', 'chat.html'].every((h) => links.includes(h)));
  await shot(index, 'index');
} finally {
  await browser.close();
}
console.log(`screenshots of the pages in ${outDir}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
