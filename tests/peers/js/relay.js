#!/usr/bin/env node
// Tiny WebSocket signaling relay for the interop peers.
//
//   node relay.js [--port 0] [--host 127.0.0.1] [--timeout 600] [--exit-when-empty]
//                 [--dump DIR]
//
// Prints "RELAY ws://HOST:PORT" as its first stdout line (port 0 = pick one).
// A room is the URL path (ws://127.0.0.1:PORT/room1; "/" is a room too), at
// most 2 peers per room. Every text frame from one peer is forwarded verbatim
// to the other peer of its room; frames sent while a peer is alone are queued
// (up to 1000) and delivered when the second peer joins. When a peer leaves,
// the other gets {"type":"peer-left"}. The relay never parses SDP; with
// --dump DIR it writes each offer and answer it relays to DIR/N-TYPE.sdp
// (how the SDP test fixtures of other stacks were captured).
'use strict';
const { WebSocketServer } = require('ws');
const fs = require('fs');
const path = require('path');
const { parseArgs } = require('./common');

const args = parseArgs(process.argv.slice(2), { port: 0, host: '127.0.0.1', timeout: 600 });
const MAX_QUEUE = 1000;
const rooms = new Map(); // path -> { peers: Set<ws>, queue: string[] }
let everFull = false;

const wss = new WebSocketServer({ host: args.host, port: args.port, maxPayload: 1 << 20 });
wss.on('listening', () => {
  const a = wss.address();
  console.log('RELAY ws://' + args.host + ':' + a.port);
});
wss.on('connection', (ws, req) => {
  const name = (req.url || '/').split('?')[0];
  let room = rooms.get(name);
  if (!room) { room = { peers: new Set(), queue: [] }; rooms.set(name, room); }
  if (room.peers.size >= 2) { ws.close(4001, 'room full'); return; }
  room.peers.add(ws);
  log('join ' + name + ' (' + room.peers.size + ' peers)');
  if (room.peers.size === 2) {
    everFull = true;
    for (const m of room.queue.splice(0)) ws.send(m);
  }
  ws.on('message', (data, isBinary) => {
    if (isBinary) return; // the protocol is JSON text only
    const text = data.toString();
    if (args.dump) dump(text);
    const others = [...room.peers].filter((p) => p !== ws);
    if (others.length === 0) {
      if (room.queue.length < MAX_QUEUE) room.queue.push(text);
      return;
    }
    for (const p of others) p.send(text);
  });
  ws.on('close', () => {
    room.peers.delete(ws);
    log('leave ' + name + ' (' + room.peers.size + ' peers)');
    for (const p of room.peers) p.send(JSON.stringify({ type: 'peer-left' }));
    if (room.peers.size === 0) {
      rooms.delete(name);
      if (args['exit-when-empty'] && everFull && rooms.size === 0) shutdown(0);
    }
  });
});

let dumped = 0;
function dump(text) {
  let msg;
  try { msg = JSON.parse(text); } catch (e) { return; }
  if ((msg.type === 'offer' || msg.type === 'answer') && typeof msg.sdp === 'string') {
    fs.mkdirSync(args.dump, { recursive: true });
    fs.writeFileSync(path.join(args.dump, ++dumped + '-' + msg.type + '.sdp'), msg.sdp);
  }
}

function log(m) { console.error('[relay] ' + m); }
function shutdown(code) {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(code));
  setTimeout(() => process.exit(code), 500).unref();
}
setTimeout(() => { log('timeout, exiting'); shutdown(0); }, args.timeout * 1000).unref();
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
