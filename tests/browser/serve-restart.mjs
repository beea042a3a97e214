// `realtimer serve` restarted mid-call under the web app's call page
// (web/call.html) in two headless Chromium tabs.
//
//   node serve-restart.mjs REALTIMER_BIN [host|relay ...]
//
// Starts serve itself (the HTTP port and the STUN/TURN UDP port fixed, so
// the restart comes back where the pages look), connects the two tabs, then
// kills serve (SIGKILL: no goodbye to anyone), waits 2 s and starts it again
// with the same arguments. Each case checks, in both tabs, that the
// signaling socket was lost and came back by itself (`signaling-lost`,
// `reconnected`, then `ready` again in the room), that video frames keep
// being decoded after the restart, and that the page never reloaded (a
// marker set on `window` before the restart is still there, one navigation).
//   host:  the call runs on host candidates and simply continues.
//   relay: both tabs relay-only (?relay=udp) through serve's TURN, whose
//          allocations die with it (and whose secret is drawn anew): the
//          initiator restarts ICE with fresh credentials and the call comes
//          back, again relayed.
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { FAKE_MEDIA, launchChromium } from './launch.mjs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

const [bin, ...cases] = process.argv.slice(2);
if (!bin || cases.length === 0) {
  console.error('usage: node serve-restart.mjs REALTIMER_BIN host|relay ...');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function ok(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port free now on loopback, for TCP (`kind` 'tcp') or UDP. */
function freePort(kind) {
  return new Promise((resolve, reject) => {
    if (kind === 'tcp') {
      const s = createServer();
      s.on('error', reject);
      s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    } else {
      const s = createSocket('udp4');
      s.on('error', reject);
      s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    }
  });
}

const httpPort = await freePort('tcp');
const stunPort = await freePort('udp');
const base = `http://localhost:${httpPort}/`;
const serveArgs = [
  'serve', '--listen', `127.0.0.1:${httpPort}`, '--stun-listen', `127.0.0.1:${stunPort}`,
  // No TURN over TCP: its port would be the UDP one on TCP, not checked free.
  '--turn-tcp', 'false', '--relay-ip', '127.0.0.1', '--relay-allow', '127.0.0.1/8',
];
const serveLog = [];
let serve;

async function startServe() {
  serve = spawn(bin, serveArgs, { env: { ...process.env, RUST_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [serve.stdout, serve.stderr]) {
    stream.on('data', (d) => serveLog.push(...String(d).trimEnd().split('\n')));
  }
  // Up when /api/ice-servers answers (30 s at most: a loaded machine).
  const end = Date.now() + 30000;
  while (Date.now() < end) {
    try {
      const r = await fetch(`${base}api/ice-servers`);
      if (r.ok) return;
    } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error('serve did not come up in 30 s');
}

async function killServe() {
  const exited = new Promise((r) => serve.once('exit', r));
  serve.kill('SIGKILL');
  await exited;
}

const browser = await launchChromium(FAKE_MEDIA);
const t0 = Date.now();
const stamp = () => ((Date.now() - t0) / 1000).toFixed(3).padStart(8);

// framesDecoded of the inbound video, and the selected pair's local type.
const CALL_STATE = `(async () => {
  const stats = await window.app.peer.pc.getStats();
  let frames = 0; let pairId; const candidates = {}; const pairs = {};
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames = Math.max(frames, s.framesDecoded || 0);
    if (s.type === 'transport') pairId = s.selectedCandidatePairId;
    if (s.type === 'local-candidate') candidates[s.id] = s.candidateType;
    if (s.type === 'candidate-pair') pairs[s.id] = s.localCandidateId;
  });
  return { frames, local: candidates[pairs[pairId]] };
})()`;

async function waitFor(page, what, fn, ms) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await page.evaluate(CALL_STATE);
    if (fn(last)) return last;
    await sleep(250);
  }
  throw new Error(`${what}: not within ${ms / 1000} s (last ${JSON.stringify(last)})`);
}

async function runCase(kind) {
  const context = await browser.newContext();
  const logs = [];
  const room = `restart-${kind}-${process.pid}-${Date.now()}`;
  const query = `call.html?room=${encodeURIComponent(room)}${kind === 'relay' ? '&relay=udp' : ''}`;
  const open = async (tag) => {
    const page = await context.newPage();
    page.on('console', (m) => logs.push(`${stamp()} ${tag} ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`${stamp()} ${tag} page error: ${e}`));
    await page.goto(new URL(query, base).href);
    await page.click('#join');
    await page.waitForFunction(() => window.app?.peer, null, { timeout: 20000 });
    // What the room peer reports, and a marker a reload would wipe.
    await page.evaluate(() => {
      window.restartMarker = 'set before the restart';
      window.roomEvents = [];
      for (const name of ['signaling-lost', 'reconnected', 'created', 'joined', 'ready', 'ice-restart']) {
        window.app.peer.addEventListener(name, () => window.roomEvents.push(name));
      }
    });
    return page;
  };
  const tabs = [];
  try {
    tabs.push(await open('first'));
    await tabs[0].waitForFunction(() => window.app.peer.initiator === true, null, { timeout: 20000 });
    tabs.push(await open('second'));
    for (const [i, page] of tabs.entries()) {
      const s = await waitFor(page, `tab ${i + 1} decodes`, (s) => s.frames > 0, 30000);
      if (kind === 'relay') ok(`${kind}: tab ${i + 1} starts relayed`, s.local === 'relay', JSON.stringify(s));
    }
    await Promise.all(tabs.map((p) => p.evaluate(() => { window.roomEvents.length = 0; })));

    await killServe();
    logs.push(`${stamp()} -- serve killed`);
    await sleep(2000);
    await startServe();
    logs.push(`${stamp()} -- serve started again`);
    const atRestart = await Promise.all(tabs.map((p) => p.evaluate(CALL_STATE)));

    for (const [i, page] of tabs.entries()) {
      const name = `${kind}: tab ${i + 1}`;
      await page.waitForFunction(() => ['signaling-lost', 'reconnected', 'ready'].every((e) => window.roomEvents.includes(e)),
        null, { timeout: 30000 })
        .then(() => ok(`${name} lost its signaling, reconnected and is in the room again`, true))
        .catch(async () => ok(`${name} lost its signaling, reconnected and is in the room again`, false,
          JSON.stringify(await page.evaluate(() => window.roomEvents))));
      // A second's worth of frames past those decoded at the restart.
      const want = atRestart[i].frames + 30;
      const after = await waitFor(page, `${name} decodes after the restart`, (s) => s.frames >= want, 45000)
        .catch((e) => ({ error: e.message }));
      ok(`${name} decodes frames after the restart`, !after.error, after.error || '');
      if (kind === 'relay' && !after.error) ok(`${name} is relayed again`, after.local === 'relay', JSON.stringify(after));
      const intact = await page.evaluate(() => window.restartMarker === 'set before the restart'
        && performance.getEntriesByType('navigation').length === 1);
      ok(`${name} never reloaded`, intact);
    }
    if (kind === 'relay') {
      const restarted = await tabs[0].evaluate(() => window.roomEvents.includes('ice-restart'));
      const initiator = await tabs[0].evaluate(() => window.app.peer.initiator);
      const other = await tabs[1].evaluate(() => window.roomEvents.includes('ice-restart'));
      ok(`${kind}: the initiator restarted ICE`, (initiator && restarted) || (!initiator && other),
        JSON.stringify({ initiator, restarted, other }));
    }
  } catch (e) {
    ok(`${kind}: ran to the end`, false, e.message.split('\n')[0]);
  }
  if (failed > 0) {
    console.log(`--- console of both tabs (${logs.length} lines) ---`);
    for (const line of logs) console.log(`  ${line}`);
    console.log(`--- serve (${serveLog.length} lines, last 40) ---`);
    for (const line of serveLog.slice(-40)) console.log(`  ${line}`);
  }
  await context.close();
}

try {
  await startServe();
  for (const kind of cases) await runCase(kind);
} finally {
  await browser.close();
  serve?.kill('SIGKILL');
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
