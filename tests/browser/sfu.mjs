// The server's forwarding unit (SFU) from headless Chromium with fake media
// devices: the group-call page (web/group.html) and the broadcast page
// (web/watch.html).
//
//   node sfu.mjs URL ROOM group4      four tabs in ROOM: each decodes three
//                                     remote videos and receives three audio
//                                     streams; one leaves, the rest go on
//   node sfu.mjs URL ROOM speaker     two tabs, microphones a test tone (the
//                                     WAV file in $TONE): the tab whose track
//                                     is enabled is announced speaking by
//                                     both, then the other once they swap
//   node sfu.mjs URL ROOM whep        watches ROOM by WHEP until frames decode
//                                     (a publisher must be in ROOM)
//   node sfu.mjs URL ROOM whip SECS   publishes the fake camera into ROOM by
//                                     WHIP for SECS seconds, or until its
//                                     stdin closes
//
// URL is the server's base (http://localhost:PORT: a secure context).
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { FAKE_MEDIA, launchChromium } from './launch.mjs';

const [base, room, mode, arg] = process.argv.slice(2);
if (!base || !room || !mode) {
  console.error('usage: node sfu.mjs URL ROOM group4|whep|whip [SECS]');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function ok(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}

const t0 = Date.now();
const logs = [];
const tone = process.env.TONE ? [`--use-file-for-fake-audio-capture=${process.env.TONE}`] : [];
const browser = await launchChromium([...FAKE_MEDIA, ...tone]);
const context = await browser.newContext();

async function open(path) {
  const page = await context.newPage();
  const tag = `tab${logs.length + 1}`;
  const lines = [];
  logs.push({ tag, lines });
  const stamp = () => ((Date.now() - t0) / 1000).toFixed(3).padStart(8);
  page.on('console', (m) => lines.push(`${stamp()} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`${stamp()} page error: ${e}`));
  await page.goto(new URL(path, base).href);
  return page;
}

/** Polls `probe` (in the page) until `done(value)`, for at most `seconds`. */
async function until(page, probe, done, seconds) {
  const end = Date.now() + seconds * 1000;
  let value;
  for (;;) {
    value = await page.evaluate(probe);
    if (done(value) || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
}

const measure = () => window.app?.call ? window.app.call.measure() : null;

/** Every tile of `state` decodes video and receives audio beyond `floor`. */
function flowing(state, tiles, floor = {}) {
  if (!state || state.tiles.length !== tiles) return false;
  return state.tiles.every((t) =>
    t.frames > (floor[t.participant]?.frames ?? 0) + 10
    && t.audioPackets > (floor[t.participant]?.audioPackets ?? 0) + 10);
}

async function group4() {
  const tabs = [];
  for (let i = 0; i < 4; i++) {
    const page = await open(`/group.html?room=${encodeURIComponent(room)}&size=160x120`);
    await page.click('#join');
    tabs.push(page);
  }
  const states = [];
  for (const [i, page] of tabs.entries()) {
    const state = await until(page, measure, (s) => flowing(s, 3), 120);
    states.push(state);
    ok(`tab ${i + 1} decodes three remote videos and gets three audio streams`, flowing(state, 3), JSON.stringify(state));
    // A tile's bitrate is measured over a second or more, so a tile that
    // started decoding less than a second ago has none yet: poll for it.
    const rates = await until(page, measure, (s) => s?.tiles.every((t) => t.kbps > 0), 10);
    ok(`tab ${i + 1} shows a bitrate per tile`, rates?.tiles.every((t) => t.kbps > 0), JSON.stringify(rates?.tiles));
  }
  // The first tab leaves; the others lose its tile and keep decoding.
  const gone = states[0]?.participant;
  await tabs[0].evaluate(() => window.app.call.leave());
  for (const [i, page] of tabs.slice(1).entries()) {
    const before = await page.evaluate(measure);
    const floor = Object.fromEntries((before?.tiles || []).map((t) => [t.participant, t]));
    const state = await until(page, measure, (s) => flowing(s, 2, floor), 90);
    ok(`tab ${i + 2} drops the leaver's tile and keeps decoding the other two`,
      flowing(state, 2, floor) && state.tiles.every((t) => t.participant !== String(gone)),
      JSON.stringify(state));
  }
}

async function speaker() {
  const tabs = [];
  for (let i = 0; i < 2; i++) {
    const page = await open(`/group.html?room=${encodeURIComponent(room)}&size=160x120&processing=off`);
    await page.click('#join');
    tabs.push(page);
  }
  const ids = [];
  for (const page of tabs) {
    const state = await until(page, measure, (s) => flowing(s, 1), 120);
    ok('the two tabs receive each other', flowing(state, 1), JSON.stringify(state));
    ids.push(state?.participant);
  }
  const talk = (page, on) => page.evaluate((on) => {
    for (const t of window.app.call.stream.getAudioTracks()) t.enabled = on;
  }, on);
  // Tab 2 talks (the tone), tab 1's microphone is off (silence).
  for (const [who, other] of [[1, 0], [0, 1]]) {
    await talk(tabs[other], false);
    await talk(tabs[who], true);
    for (const [i, page] of tabs.entries()) {
      const state = await until(page, measure, (s) => s?.speaker === ids[who], 60);
      ok(`tab ${i + 1} shows tab ${who + 1} (participant ${ids[who]}) speaking`, state?.speaker === ids[who], JSON.stringify(state));
    }
  }
}

async function whep() {
  const page = await open(`/watch.html?room=${encodeURIComponent(room)}`);
  await page.click('#watch');
  const state = await until(page, () => window.app.state(), (s) => s.framesDecoded > 10, 90);
  ok('the WHEP viewer decodes the published video', state.framesDecoded > 10, JSON.stringify(state));
}

async function whip() {
  const size = process.env.SIZE ? `&size=${process.env.SIZE}` : '';
  const page = await open(`/watch.html?room=${encodeURIComponent(room)}&publish=1${size}`);
  const state = await until(page, () => window.app.state(), (s) => s.framesSent > 10, 90);
  ok('the WHIP publisher sends video', state.framesSent > 10, JSON.stringify(state));
  console.log('publishing');
  await new Promise((resolve) => {
    setTimeout(resolve, Number(arg || 20) * 1000);
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
    process.stdin.resume();
  });
}

try {
  const cases = { group4, speaker, whep, whip };
  if (!cases[mode]) throw new Error(`unknown mode ${mode}`);
  await cases[mode]();
} catch (e) {
  failed++;
  console.log(`FAIL ${mode}: ${e.message.split('\n')[0]}`);
} finally {
  if (failed) {
    for (const { tag, lines } of logs) {
      console.log(`--- console of ${tag} (${lines.length} lines) ---`);
      for (const line of lines.slice(-200)) console.log(`  ${line}`);
    }
  }
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
