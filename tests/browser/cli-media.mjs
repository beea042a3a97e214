// `realtimer play` and `realtimer record` with the web app's video call
// page (web/call.html) in headless Chromium (fake camera and microphone),
// through `realtimer serve`:
//
//   node cli-media.mjs URL REALTIMER WORKDIR VIDEO.ivf AUDIO.ogg [vp9]
//
// play:   the page joins first (it offers), `realtimer play` answers and
//         streams the files; the page decodes the video (framesDecoded)
//         and receives the audio; play exits 0 at the files' end.
// record: `realtimer record --seconds 6 WORKDIR/call.webm` joins first (it
//         offers), the page answers with its camera and microphone; record
//         exits 0 and prints its frame counts (the Rust test reads the file
//         back with ffprobe).
// With `vp9` (VIDEO is VP9): play must reach the page as VP9 (the file's
// codec decides what play offers and accepts), and record asks for VP9
// with `--video-codec vp9` into WORKDIR/call-vp9.ivf (video only; the
// Rust test reads its header and ffprobe decodes it).
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { FAKE_MEDIA, launchChromium } from './launch.mjs';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, realtimer, workDir, video, audio, mode] = process.argv.slice(2);
const vp9 = mode === 'vp9';
if (!base || !realtimer || !workDir || !video || !audio) {
  console.error('usage: node cli-media.mjs URL REALTIMER WORKDIR VIDEO.ivf AUDIO.ogg');
  process.exit(2);
}
mkdirSync(workDir, { recursive: true });

let passed = 0;
let failed = 0;
function ok(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}
const t0 = Date.now();
const stamp = () => ((Date.now() - t0) / 1000).toFixed(3).padStart(8);
const logs = [];

function cli(args) {
  const child = spawn(realtimer, args, {
    cwd: workDir,
    env: { ...process.env, REALTIMER_SERVER: base, REALTIMER_LOOPBACK: '1', REALTIMER_LOG: process.env.REALTIMER_LOG || 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const peer = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { peer.stdout += d; logs.push(`${stamp()} ${args[0]} stdout: ${String(d).trim()}`); });
  child.stderr.on('data', (d) => { peer.stderr += d; for (const l of String(d).split('\n')) if (l) logs.push(`${stamp()} ${args[0]}: ${l}`); });
  peer.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return peer;
}
const exitWithin = (peer, ms) => Promise.race([peer.exited, new Promise((r) => setTimeout(() => r('still running'), ms))]);

async function waitFor(what, f, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await Promise.resolve().then(f).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const INBOUND = `(async (pc) => {
  const out = { video: 0, audio: 0, videoCodec: '' };
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') {
      out.video = Math.max(out.video, s.framesDecoded || 0);
      out.videoCodec = stats.get(s.codecId)?.mimeType || out.videoCodec;
    }
    if (s.kind === 'audio') out.audio = Math.max(out.audio, s.packetsReceived || 0);
  });
  return out;
})`;

const browser = await launchChromium(FAKE_MEDIA);
const peers = [];
async function open(path) {
  const page = await (await browser.newContext()).newPage();
  page.on('console', (m) => logs.push(`${stamp()} page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`${stamp()} page error: ${e}`));
  await page.goto(new URL(path, base).href);
  return page;
}
try {
  {
    const room = `play-${process.pid}`;
    const page = await open(`call.html?room=${room}`);
    await page.click('#join');
    await page.waitForFunction(() => window.app?.peer?.initiator === true, null, { timeout: 15000 });
    const play = cli(['play', '--room', room, video, audio]);
    peers.push(play);
    let inbound = { video: 0, audio: 0 };
    await waitFor('decoded frames', async () => {
      inbound = await page.evaluate(`${INBOUND}(window.app.peer.pc)`);
      return inbound.video >= 30 && inbound.audio >= 25;
    }, 30000).catch(() => {});
    ok('play: the call page decodes the file\'s video (30+ frames)', inbound.video >= 30, JSON.stringify(inbound));
    if (vp9) ok('play: the page decodes VP9', inbound.videoCodec === 'video/VP9', JSON.stringify(inbound));
    ok('play: the file\'s audio arrives (25+ packets)', inbound.audio >= 25, JSON.stringify(inbound));
    const code = await exitWithin(play, 30000);
    ok('play: exits 0 at the end of the files', code === 0, `exit ${code}`);
    await page.screenshot({ path: join(workDir, 'play.png'), fullPage: true });
    await page.close();
  }
  {
    const room = `record-${process.pid}`;
    const record = cli(vp9
      ? ['record', '--room', room, '--seconds', '6', '--video-codec', 'vp9', join(workDir, 'call-vp9.ivf')]
      : ['record', '--room', room, '--seconds', '6', join(workDir, 'call.webm')]);
    peers.push(record);
    await waitFor('record to create the room', () => record.stderr.includes('created=true'), 15000);
    const page = await open(`call.html?room=${room}`);
    await page.click('#join');
    const code = await exitWithin(record, 60000);
    const counts = /recorded (\d+) video frames and (\d+) audio packets/.exec(record.stdout);
    ok('record: exits 0 after --seconds', code === 0, `exit ${code}`);
    if (vp9) {
      ok('record: the camera\'s VP9 frames were written', counts && Number(counts[1]) > 30, record.stdout);
    } else {
      ok('record: the camera\'s frames and the microphone\'s packets were written',
        counts && Number(counts[1]) > 30 && Number(counts[2]) > 50, record.stdout);
    }
    await page.close();
  }
} catch (e) {
  ok('the cases ran', false, e.message.split('\n')[0]);
} finally {
  if (failed) for (const line of logs) console.log(`  ${line}`);
  for (const peer of peers) peer.child.kill();
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
