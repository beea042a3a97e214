// The web app's two-party pages (web/call.html, web/snap.html) with
// headless Firefox ESR (puppeteer-core over WebDriver BiDi) on one side.
//
//   node webapp-firefox.mjs URL REALTIMER OUTDIR chromium|firefox|echo
//
// chromium: Firefox and Chromium in one room. The call page (Firefox joins
//   first, so it offers) must decode video both ways; the snap page
//   (Chromium joins first and offers) sends a photo over the data channel
//   each way, and each received canvas must equal the sent pixels.
// firefox: the same with two Firefox tabs.
// echo: Firefox's call page with `realtimer echo` in its room, the page
//   joining first (it offers) and then second (it answers): the echoed
//   video decodes and the echoed audio arrives; hanging up makes the echo
//   exit 0.
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { FAKE_MEDIA, launchChromium, launchFirefox } from './launch.mjs';
import { checks, startEcho } from './checks.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, realtimer, outDir, pairing] = process.argv.slice(2);
if (!base || !realtimer || !outDir || !['chromium', 'firefox', 'echo'].includes(pairing)) {
  console.error('usage: node webapp-firefox.mjs URL REALTIMER OUTDIR chromium|firefox|echo');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const { ok, log, finish } = checks();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const room = (page) => `ff-${pairing}-${page}-${process.pid}-${Date.now()}`;

// playwright and puppeteer pages share goto, click, evaluate(fn, arg) and
// screenshot; waiting is done here by polling, the same for both.
async function open(browser, name, path) {
  const page = await browser.newPage();
  page.on('console', (m) => log(`${name}: ${m.text()}`));
  page.on('pageerror', (e) => log(`${name} page error: ${e.message || e}`));
  await page.goto(new URL(path, base).href);
  return page;
}

async function until(page, what, fn, arg, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // Before the page made its connection, evaluating throws: not yet.
    if (await page.evaluate(fn, arg).catch(() => false)) return;
    await sleep(150);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// framesDecoded of the video and packetsReceived of the audio arriving on
// the page's RoomPeer connection.
const inbound = (page) => page.evaluate(async () => {
  const out = { video: 0, audio: 0 };
  (await window.app.peer.pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') out.video = Math.max(out.video, s.framesDecoded || 0);
    if (s.kind === 'audio') out.audio = Math.max(out.audio, s.packetsReceived || 0);
  });
  return out;
});

async function decodes(name, page) {
  let got = { video: 0, audio: 0 };
  const end = Date.now() + 40000;
  while (Date.now() < end) {
    got = await inbound(page).catch(() => got);
    if (got.video > 0 && got.audio > 0) break;
    await sleep(250);
  }
  ok(`${name} decodes the other's video and receives its audio`, got.video > 0 && got.audio > 0, JSON.stringify(got));
}

/** The call page with `first` joining before `second`; both decode. */
async function call([firstName, first], [secondName, second]) {
  const r = room('call');
  const a = await open(first, firstName, `call.html?room=${encodeURIComponent(r)}`);
  await a.click('#join');
  await until(a, `${firstName} to create the room`, () => window.app?.peer?.initiator === true, undefined, 15000);
  const b = await open(second, secondName, `call.html?room=${encodeURIComponent(r)}`);
  await b.click('#join');
  await decodes(`call: ${firstName} (offerer)`, a);
  await decodes(`call: ${secondName} (answerer)`, b);
  await a.screenshot({ path: join(outDir, `${pairing}-call-${firstName}.png`) });
  await a.click('#hangup');
  await until(b, 'bye', () => document.getElementById('state').textContent === 'the other side hung up', undefined, 15000)
    .then(() => ok(`call: hanging up in ${firstName} tells ${secondName}`, true))
    .catch((e) => ok(`call: hanging up in ${firstName} tells ${secondName}`, false, e.message));
  await a.close();
  await b.close();
}

const PIXELS = (id) => {
  const c = document.getElementById(id);
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
};

/** The snap page: a photo over the data channel from `from` to `to`. */
async function snapOneWay([fromName, from], [toName, to]) {
  const before = await to.evaluate(() => window.app.received);
  await from.click('#snapAndSend');
  await until(to, `${toName} to receive the photo`, (n) => window.app.received > n, before, 30000);
  const sent = await from.evaluate(PIXELS, 'photo');
  const received = await to.evaluate(PIXELS, 'received');
  const nonBlank = sent.some((v, i) => i % 4 !== 3 && v !== 0);
  let equal = sent.length === received.length;
  for (let i = 0; equal && i < sent.length; i++) equal = sent[i] === received[i];
  ok(`snap: ${fromName} -> ${toName}: a non-blank photo's ${sent.length} bytes arrive equal`, nonBlank && equal,
    `nonBlank=${nonBlank} equal=${equal}`);
}

async function snap([firstName, first], [secondName, second]) {
  const r = room('snap');
  const a = await open(first, firstName, `snap.html?room=${encodeURIComponent(r)}`);
  await a.click('#join');
  await until(a, `${firstName} to create the room`, () => window.app?.peer?.initiator === true, undefined, 15000);
  const b = await open(second, secondName, `snap.html?room=${encodeURIComponent(r)}`);
  await b.click('#join');
  for (const [name, page] of [[firstName, a], [secondName, b]]) {
    await until(page, `${name}'s channel to open`, () => !document.getElementById('snapAndSend').disabled, undefined, 30000);
    await until(page, `${name}'s camera`, () => document.getElementById('local').videoWidth > 0, undefined, 15000);
  }
  await snapOneWay([firstName, a], [secondName, b]);
  await snapOneWay([secondName, b], [firstName, a]);
  await a.close();
  await b.close();
}

/** Firefox's call page with the echo; `order`: who joins first. */
async function echoCall(firefox, order) {
  const r = room(`echo-${order}`);
  const page = await open(firefox, 'firefox', `call.html?room=${encodeURIComponent(r)}`);
  let echo;
  try {
    if (order === 'page-offers') {
      await page.click('#join');
      await until(page, 'the page to create the room', () => window.app?.peer?.initiator === true, undefined, 15000);
      echo = startEcho(realtimer, base, r, log);
    } else {
      echo = startEcho(realtimer, base, r, log);
      const end = Date.now() + 15000;
      while (!echo.output.includes('created the room') && Date.now() < end) await sleep(100);
      await page.click('#join');
    }
    await decodes(`echo (${order}): firefox`, page);
    await page.click('#hangup');
    const code = await Promise.race([echo.exited, sleep(10000).then(() => 'still running')]);
    ok(`echo (${order}): hanging up makes the echo exit 0`, code === 0, `exit: ${code}`);
  } finally {
    echo?.child.kill();
    await page.close();
  }
}

const firefox = await launchFirefox();
let other;
try {
  if (pairing === 'echo') {
    await echoCall(firefox, 'page-offers');
    await echoCall(firefox, 'page-answers');
  } else {
    other = pairing === 'chromium' ? await launchChromium(FAKE_MEDIA) : firefox;
    await call(['firefox', firefox], [pairing, other]);
    await snap([pairing, other], ['firefox', firefox]);
  }
} catch (e) {
  ok('the pages ran', false, e.message.split('\n')[0]);
} finally {
  if (other && other !== firefox) await other.close();
  await firefox.close();
}
process.exit(finish());
