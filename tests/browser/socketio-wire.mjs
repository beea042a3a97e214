// Wire-level tests of the codelab's Socket.IO signaling protocol with the
// official npm clients of both generations.
//
//   node socketio-wire.mjs URL v2|v4|mixed   codelab events, order, arguments
//   node socketio-wire.mjs URL bad           bad input: limits and errors
//
// URL is the server's base, e.g. http://127.0.0.1:8080. Prints one line per
// check and ends with "N passed, N failed"; exits 1 if any failed.
import { createRequire } from 'node:module';
import { isDeepStrictEqual, inspect } from 'node:util';

const require = createRequire(import.meta.url);
const clients = {
  v2: require('socket.io-client-v2'),
  v4: require('socket.io-client-v4'),
};

const [url, mode] = process.argv.slice(2);
if (!url || !mode) {
  console.error('usage: node socketio-wire.mjs URL v2|v4|mixed|bad');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function check(name, actual, expected) {
  if (isDeepStrictEqual(actual, expected)) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}\n     got      ${inspect(actual, { depth: 5 })}\n     expected ${inspect(expected, { depth: 5 })}`);
  }
}
function ok(name, cond, detail = '') {
  check(name + (cond ? '' : ` ${detail}`), !!cond, true);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A client that records every event (name and arguments) in order.
async function connect(version) {
  const io = clients[version];
  const opts = { forceNew: true, reconnection: false };
  const socket = version === 'v2' ? io.connect(url, opts) : io(url, opts);
  const events = [];
  const record = (name, args) => events.push([name, ...args]);
  if (version === 'v2') {
    const onevent = socket.onevent;
    socket.onevent = function (packet) {
      record(packet.data[0], packet.data.slice(1));
      onevent.call(this, packet);
    };
  } else {
    socket.onAny((name, ...args) => record(name, args));
  }
  await new Promise((resolve, reject) => {
    socket.on('connect', resolve);
    socket.on('connect_error', reject);
    setTimeout(() => reject(new Error('connect timeout')), 5000);
  });
  return { socket, events, version, id: socket.id };
}

async function until(what, cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await sleep(10);
  }
}

const withoutLogs = (c) => c.events.filter((e) => e[0] !== 'log');
const logs = (c) => c.events.filter((e) => e[0] === 'log').map((e) => e[1]);
const M = 'Message from server:';

async function codelab(versionA, versionB) {
  const room = `room-${versionA}-${versionB}-${process.pid}`;
  const a = await connect(versionA);
  a.socket.emit('create or join', room);
  await until('created', () => withoutLogs(a).length >= 1);
  check(`${versionA} first client gets created(room, id)`, withoutLogs(a), [['created', room, a.id]]);
  check(`${versionA} first client's log lines`, logs(a), [
    [M, `Received request to create or join room ${room}`],
    [M, `Room ${room} now has 0 client(s)`],
    [M, `Client ID ${a.id} created room ${room}`],
  ]);

  const b = await connect(versionB);
  b.socket.emit('create or join', room);
  await until('ready', () => withoutLogs(a).length >= 3 && withoutLogs(b).length >= 2);
  check(`${versionA} first client then gets join(room), ready()`, withoutLogs(a), [
    ['created', room, a.id],
    ['join', room],
    ['ready'],
  ]);
  check(`${versionB} second client gets joined(room, id), ready()`, withoutLogs(b), [
    ['joined', room, b.id],
    ['ready'],
  ]);
  check(`${versionB} second client's log lines`, logs(b), [
    [M, `Received request to create or join room ${room}`],
    [M, `Room ${room} now has 1 client(s)`],
    [M, `Client ID ${b.id} joined room ${room}`],
  ]);

  const c = await connect(versionA);
  c.socket.emit('create or join', room);
  await until('full', () => withoutLogs(c).length >= 1);
  check(`${versionA} third client gets full(room)`, withoutLogs(c), [['full', room]]);

  const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
  a.socket.emit('message', offer);
  a.socket.emit('message', 'got user media');
  b.socket.emit('message', { type: 'candidate', label: 0, id: '0', candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host' });
  await until('messages', () => withoutLogs(b).length >= 4 && withoutLogs(a).length >= 4 && logs(a).length >= 5);
  check('messages reach the other member, in order, unchanged', withoutLogs(b).slice(2), [
    ['message', offer],
    ['message', 'got user media'],
  ]);
  check('and back', withoutLogs(a).slice(3).map((e) => e[0]), ['message']);
  check('the sender gets the codelab\'s "Client said:" log', logs(a).slice(3, 5), [
    [M, 'Client said: ', offer],
    [M, 'Client said: ', 'got user media'],
  ]);
  await sleep(100);
  check('the client that got full receives no messages', withoutLogs(c), [['full', room]]);

  a.socket.emit('ipaddr');
  await sleep(100);
  ok('ipaddr answers with IPv4 addresses other than 127.0.0.1',
    a.events.filter((e) => e[0] === 'ipaddr').every((e) => typeof e[1] === 'string' && e[1] !== '127.0.0.1'));

  // bye frees the slot: the third client can now join.
  a.socket.emit('bye');
  await sleep(100);
  c.events.length = 0;
  c.socket.emit('create or join', room);
  await until('joined after bye', () => withoutLogs(c).length >= 2);
  check('after bye, a new client joins the room', withoutLogs(c), [['joined', room, c.id], ['ready']]);

  for (const x of [a, b, c]) x.socket.close();
}

async function bad() {
  const a = await connect('v4');
  const refused = () => a.events.filter((e) => e[0] === 'refused');

  a.socket.emit('create or join', 'x'.repeat(10000));
  await until('refused', () => refused().length >= 1);
  check('a 10,000-character room name is refused', refused()[0].slice(0, 2), ['refused', 'bad-room-name']);

  a.socket.emit('create or join', 42);
  a.socket.emit('create or join', { room: 'x' });
  a.socket.emit('no such event', 1);
  a.socket.emit('message', 'hello');
  await until('4 more refusals', () => refused().length >= 5);
  check('non-string rooms, unknown events, messages outside a room are refused',
    refused().slice(1, 5).map((e) => e[1]), ['malformed', 'malformed', 'malformed', 'not-in-room']);

  const room = `bad-${process.pid}`;
  a.socket.emit('create or join', room);
  const b = await connect('v2');
  b.socket.emit('create or join', room);
  await until('ready', () => b.events.some((e) => e[0] === 'ready'));
  a.socket.emit('message', 'y'.repeat(100 * 1024));
  await until('oversize refused', () => refused().length >= 6);
  check('a 100 KiB message is refused', refused()[5].slice(0, 2), ['refused', 'message-too-large']);
  a.socket.emit('message', 'still here');
  await until('relay after oversize', () => b.events.some((e) => e[0] === 'message'));
  check('the connection still relays afterwards', b.events.filter((e) => e[0] === 'message'), [['message', 'still here']]);

  // 1,000 joins as fast as one client can send them.
  const flooder = await connect('v4');
  for (let i = 0; i < 1000; i++) flooder.socket.emit('create or join', `flood-${process.pid}-${i}`);
  // Refusals past a full outbound queue are left out, so wait for quiet.
  let seen = -1;
  while (seen !== flooder.events.length) {
    seen = flooder.events.length;
    await sleep(300);
  }
  const kinds = {};
  for (const e of flooder.events.filter((e) => e[0] !== 'log')) {
    const k = e[0] === 'refused' ? e[1] : e[0];
    kinds[k] = (kinds[k] || 0) + 1;
  }
  ok('a join flood creates one room and is refused otherwise',
    kinds.created === 1 && kinds['rate-limited'] > 0 && kinds['already-in-room'] > 0, inspect(kinds));
  ok('the flooding client stays connected', flooder.socket.connected);

  // Other rooms are unaffected.
  const c = await connect('v4');
  const d = await connect('v2');
  c.socket.emit('create or join', `calm-${process.pid}`);
  d.socket.emit('create or join', `calm-${process.pid}`);
  await until('calm room ready', () => d.events.some((e) => e[0] === 'ready'));
  c.socket.emit('message', 'fine');
  await until('calm relay', () => d.events.some((e) => e[0] === 'message'));
  ok('a room beside the flood still works', true);
  for (const x of [a, b, c, d, flooder]) x.socket.close();
}

try {
  if (mode === 'bad') await bad();
  else if (mode === 'mixed') {
    await codelab('v2', 'v4');
    await codelab('v4', 'v2');
  } else await codelab(mode, mode);
} catch (e) {
  failed++;
  console.log(`FAIL ${e.stack || e}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
