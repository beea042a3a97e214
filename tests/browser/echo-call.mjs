// The web app's video call page (web/call.html) in headless Chromium with
// a Rust peer, `realtimer echo`, that sends the page's own audio and video
// back to it.
//
//   node echo-call.mjs URL REALTIMER OUTDIR answer|offer
//
// answer: the page joins first (it offers; the echo answers). offer: the
// echo joins first (it offers; the page answers). Checks: the page's remote
// video decodes frames (framesDecoded > 0) and audio arrives; hanging up
// sends bye and the echo process exits 0. Prints one line per check and
// "N passed, N failed"; exits 1 if any failed.
import { FAKE_MEDIA, launchChromium } from './launch.mjs';
import { checks, startEcho } from './checks.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, realtimer, outDir, order] = process.argv.slice(2);
if (!base || !realtimer || !outDir || !['answer', 'offer'].includes(order)) {
  console.error('usage: node echo-call.mjs URL REALTIMER OUTDIR answer|offer');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const { ok, log, finish } = checks();

async function waitFor(what, f, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // Before the page made its connection, evaluating throws: not yet.
    if (await Promise.resolve().then(f).catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The inbound-rtp figures of the page's connection, by kind.
const INBOUND = `(async (pc) => {
  const stats = await pc.getStats();
  const out = { video: 0, audio: 0 };
  stats.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') out.video = Math.max(out.video, s.framesDecoded || 0);
    if (s.kind === 'audio') out.audio = Math.max(out.audio, s.packetsReceived || 0);
  });
  return out;
})`;

const browser = await launchChromium(FAKE_MEDIA);
let echo;
try {
  const room = `echo-${order}-${process.pid}-${Date.now()}`;
  const page = await (await browser.newContext()).newPage();
  page.on('console', (m) => log(`page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(`page error: ${e}`));
  await page.goto(new URL(`call.html?room=${encodeURIComponent(room)}`, base).href);
  if (order === 'offer') {
    echo = startEcho(realtimer, base, room, log);
    await waitFor('the echo to create the room', () => echo.output.includes('created the room'), 15000);
    await page.click('#join');
  } else {
    await page.click('#join');
    await page.waitForFunction(() => window.app?.peer?.initiator === true, null, { timeout: 10000 });
    echo = startEcho(realtimer, base, room, log);
  }
  let inbound = { video: 0, audio: 0 };
  await waitFor('decoded frames', async () => {
    inbound = await page.evaluate(`${INBOUND}(window.app.peer.pc)`);
    return inbound.video > 0 && inbound.audio > 0;
  }, 30000).catch(() => {}); // reported below
  ok(`${order}: the page decodes the echoed video (framesDecoded > 0)`, inbound.video > 0, JSON.stringify(inbound));
  ok(`${order}: the echoed audio arrives (packetsReceived > 0)`, inbound.audio > 0, JSON.stringify(inbound));
  await page.waitForFunction(() => document.getElementById('remote').videoWidth > 0, null, { timeout: 10000 })
    .then(() => ok(`${order}: the remote video plays`, true))
    .catch((e) => ok(`${order}: the remote video plays`, false, e.message.split('\n')[0]));
  await page.screenshot({ path: join(outDir, `echo-${order}.png`), fullPage: true });
  await page.click('#hangup');
  const code = await Promise.race([echo.exited, new Promise((r) => setTimeout(() => r('still running'), 10000))]);
  ok(`${order}: hanging up sends bye and the echo exits 0`, code === 0 && echo.output.includes('the other side hung up'), `exit: ${code}`);
} catch (e) {
  ok(`${order}: the call ran`, false, e.message.split('\n')[0]);
} finally {
  echo?.child.kill();
  await browser.close();
}
process.exit(finish());
