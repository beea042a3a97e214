// The CLI peers with the web app's pages in headless Chromium, through
// `realtimer serve`:
//
//   node cli-peers.mjs URL REALTIMER WORKDIR
//
// files: `realtimer send` → files.html (the page joins first and offers),
//        files.html → `realtimer recv` (the CLI joins first and offers);
//        the SHA-256 checks on both sides, the bytes on disk.
// chat:  chat.html ↔ `realtimer chat`, a line each way; the end of the
//        CLI's input closes the chat and the page sees it.
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { launchChromium } from './launch.mjs';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, realtimer, workDir] = process.argv.slice(2);
if (!base || !realtimer || !workDir) {
  console.error('usage: node cli-peers.mjs URL REALTIMER WORKDIR');
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

/** `realtimer ARGS` in WORKDIR against the server; output collected. */
function cli(args) {
  const child = spawn(realtimer, args, {
    cwd: workDir,
    env: { ...process.env, REALTIMER_SERVER: base, REALTIMER_LOOPBACK: '1', REALTIMER_LOG: process.env.REALTIMER_LOG || 'info' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const peer = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => {
    peer.stdout += d;
    for (const line of String(d).split('\n')) if (line) logs.push(`${stamp()} ${args[0]} stdout: ${line}`);
  });
  child.stderr.on('data', (d) => {
    peer.stderr += d;
    for (const line of String(d).split('\n')) if (line) logs.push(`${stamp()} ${args[0]}: ${line}`);
  });
  peer.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return peer;
}

/** Its exit code, or 'still running' after `ms`. */
function exitWithin(peer, ms) {
  return Promise.race([peer.exited, new Promise((r) => setTimeout(() => r('still running'), ms))]);
}

async function waitFor(what, f, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await Promise.resolve().then(f).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const browser = await launchChromium();
const context = await browser.newContext();
async function open(path) {
  const page = await context.newPage();
  page.on('console', (m) => logs.push(`${stamp()} page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`${stamp()} page error: ${e}`));
  await page.goto(new URL(path, base).href);
  return page;
}
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const peers = [];

try {
  // CLI → browser: the page created the room, so it offers.
  {
    const room = `cli-to-page-${process.pid}`;
    const bytes = randomBytes(2 * 1024 * 1024 + 17);
    writeFileSync(join(workDir, 'from-cli.bin'), bytes);
    const page = await open(`files.html?room=${room}`);
    await page.click('#join');
    await page.waitForFunction(() => window.app?.peer?.initiator === true, null, { timeout: 15000 });
    const send = cli(['send', '--room', room, 'from-cli.bin']);
    peers.push(send);
    await page.waitForFunction(() => window.app.received.length === 1, null, { timeout: 60000 });
    const got = await page.evaluate(() => window.app.received[0]);
    ok('send → page: the file arrives whole', got.size === bytes.length && got.name === 'from-cli.bin', JSON.stringify(got));
    ok('send → page: the page checked the SHA-256 from the header', got.ok === true && got.sha256 === sha256(bytes), JSON.stringify(got));
    const code = await exitWithin(send, 30000);
    ok('send → page: the CLI got the page\'s receipt and exits 0', code === 0 && send.stdout.includes('received and checked'), `exit ${code}: ${send.stdout}`);
    await page.close();
  }

  // Browser → CLI: the CLI created the room, so it offers.
  {
    const room = `page-to-cli-${process.pid}`;
    const bytes = randomBytes(1024 * 1024 + 5);
    const recv = cli(['recv', '--room', room, '--count', '1', 'inbox']);
    peers.push(recv);
    await waitFor('recv to create the room', () => recv.stderr.includes('created=true'), 15000);
    const page = await open(`files.html?room=${room}`);
    await page.click('#join');
    await page.waitForFunction(() => !document.getElementById('send').disabled, null, { timeout: 30000 });
    await page.setInputFiles('#file', { name: 'from-page.bin', mimeType: 'application/octet-stream', buffer: bytes });
    await page.click('#send');
    const code = await exitWithin(recv, 60000);
    ok('page → recv: the CLI saves the file, checks it and exits 0', code === 0 && recv.stdout.includes('received from-page.bin'), `exit ${code}: ${recv.stdout}`);
    let saved = Buffer.alloc(0);
    try { saved = readFileSync(join(workDir, 'inbox', 'from-page.bin')); } catch { /* reported below */ }
    ok('page → recv: the bytes on disk are the page\'s', saved.equals(bytes), `${saved.length} bytes`);
    await page.waitForFunction(() => window.app.receipts.length === 1, null, { timeout: 10000 }).catch(() => {});
    const receipt = await page.evaluate(() => window.app.receipts[0]);
    ok('page → recv: the page gets the CLI\'s receipt', receipt?.ok === true && receipt?.sha256 === sha256(bytes), JSON.stringify(receipt));
    await page.close();
  }

  // Chat both ways; the page joins first.
  {
    const room = `chat-${process.pid}`;
    const page = await open(`chat.html?room=${room}`);
    await page.click('#join');
    await page.waitForFunction(() => window.app?.peer?.initiator === true, null, { timeout: 15000 });
    const chat = cli(['chat', '--room', room]);
    peers.push(chat);
    await page.waitForFunction(() => !document.getElementById('line').disabled, null, { timeout: 30000 });
    chat.child.stdin.write('hello from the terminal\n');
    await page.waitForFunction(() => window.app.received.includes('hello from the terminal'), null, { timeout: 15000 })
      .then(() => ok('chat: a line typed in the CLI shows on the page', true))
      .catch(() => ok('chat: a line typed in the CLI shows on the page', false, JSON.stringify(logs.slice(-5))));
    await page.fill('#line', 'hello from the browser');
    await page.press('#line', 'Enter');
    await waitFor('the CLI to print the line', () => chat.stdout.includes('hello from the browser'), 15000)
      .then(() => ok('chat: a line sent from the page is printed by the CLI', true))
      .catch(() => ok('chat: a line sent from the page is printed by the CLI', false, chat.stdout));
    chat.child.stdin.end();
    const code = await exitWithin(chat, 20000);
    ok('chat: the end of the CLI\'s input closes the chat, exit 0', code === 0, `exit ${code}`);
    await page.waitForFunction(() => window.app.closed === true || document.getElementById('state').textContent.includes('left'), null, { timeout: 10000 })
      .then(() => ok('chat: the page sees the chat end', true))
      .catch((e) => ok('chat: the page sees the chat end', false, e.message.split('\n')[0]));
    await page.screenshot({ path: join(workDir, 'chat.png'), fullPage: true });
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
