// A peer connection signaled through a room of this server, with the
// codelab's Socket.IO protocol (needs /socket.io/socket.io.js loaded).
//
// The client that gets `created` is the initiator: on `ready` it (creates
// the data channel and) sends the offer. Messages are {type: offer|answer|
// candidate|bye}, handled strictly in order.
//
// The server's STUN and TURN servers (with a time-limited TURN credential,
// GET /api/ice-servers) are applied before anything is negotiated, so calls
// go through our relay when the peers cannot reach each other directly
// (options.relay: only through it, over that transport or any).
//
// The call outlives its signaling: when the server restarts (or the network
// drops) the socket reconnects with capped, jittered backoff (socket.io.js)
// and joins the room again, while the media keeps flowing peer to peer.
// Messages sent meanwhile wait until both are in the room again. If the
// connection went down too (a TURN relay that restarted with the server, a
// changed path), the initiator, the one that got `created`, restarts ICE
// (RFC 8445 §9; W3C webrtc-pc §4.4.1.6) with fresh ICE servers once both are
// back in the room, and again whenever the connection fails while both are.

import { rtcConfiguration, relayOnly } from './ice-servers.js';

/** How long `disconnected` may last before the initiator restarts ICE. */
const DISCONNECTED_RESTART_MS = 3000;

export class RoomPeer extends EventTarget {
  /**
   * @param {string} room
   * @param {{stream?: MediaStream, dataChannel?: string, relay?: 'any'|'udp'|'tcp'|'tls', log?: (...a) => void}} options
   */
  constructor(room, options = {}) {
    super();
    this.room = room;
    this.options = options;
    this.log = options.log || (() => {});
    this.initiator = false;
    this.ready = false; // both are in the room (since the socket last connected)
    this.called = false; // the first offer went out (or came in)
    this.closed = false;
    this.held = []; // messages sent while out of the room
    this.connects = 0;
    this.chain = Promise.resolve();
    this.pc = this.newPeerConnection();
    this.socket = window.io.connect({ reconnectionDelay: 500, reconnectionDelayMax: 5000, randomizationFactor: 0.5 });
    const s = this.socket;
    s.on('connect', () => {
      this.trace('socket connected', s.id);
      // The first `create or join` was queued before the socket opened.
      if (this.connects++ > 0 && !this.closed) {
        this.event('reconnected');
        s.emit('create or join', room);
      }
    });
    s.on('connect_error', (e) => this.trace('socket connect error', String(e)));
    s.on('reconnect_attempt', (n) => this.trace('socket reconnect attempt', n));
    s.on('disconnect', (why) => {
      this.trace('socket disconnected', why);
      this.ready = false;
      if (!this.closed) this.event('signaling-lost', why);
    });
    s.on('created', (r, id) => { this.initiator = true; this.entered('created', r, id); });
    s.on('joined', (r, id) => { this.initiator = false; this.entered('joined', r, id); });
    s.on('join', (r) => this.event('join', r));
    s.on('full', (r) => this.event('full', r));
    s.on('refused', (code, message) => this.event('refused', code, message));
    s.on('log', (line) => console.log(...line));
    s.on('ready', () => {
      this.ready = true;
      this.event('ready');
      for (const m of this.held.splice(0)) this.send(m);
      if (!this.initiator) return;
      if (!this.called) {
        this.called = true;
        this.chain = this.chain.then(() => this.call()).catch((e) => this.fail(e));
      } else if (this.pc.connectionState !== 'connected') {
        this.restartIce('the connection is down after signaling came back');
      }
    });
    s.on('message', (m) => {
      this.trace('received', describe(m));
      this.chain = this.chain.then(() => this.onMessage(m)).catch((e) => this.fail(e));
    });
    s.emit('create or join', room);
  }

  /** In the room (again); after a reconnect, takes fresh ICE servers for a restart. */
  entered(name, ...args) {
    this.event(name, ...args);
    if (this.called) this.chain = this.chain.then(() => this.applyIceServers(true));
  }

  /** The server's ICE servers (or only its relays, with options.relay) on the connection. */
  async applyIceServers(fresh) {
    try {
      const relay = this.options.relay;
      const config = relay
        ? await relayOnly(relay === 'any' ? undefined : relay, { fresh })
        : await rtcConfiguration({ fresh });
      if (config.iceServers?.length) this.pc.setConfiguration({ ...this.pc.getConfiguration(), ...config });
    } catch (e) {
      this.trace('ICE servers not applied', String(e));
    }
  }

  /** Restarts ICE (the initiator only, both in the room), with fresh ICE servers. */
  restartIce(why) {
    if (!this.initiator || !this.ready || this.closed || this.restarting) return;
    this.restarting = true;
    this.event('ice-restart', why);
    this.chain = this.chain
      .then(async () => {
        await this.applyIceServers(true);
        const offer = await this.pc.createOffer({ iceRestart: true });
        await this.pc.setLocalDescription(offer);
        this.send({ type: 'offer', sdp: offer.sdp });
      })
      .catch((e) => this.fail(e))
      .finally(() => { this.restarting = false; });
  }

  event(name, ...args) {
    this.log(name, ...args);
    this.dispatchEvent(new CustomEvent(name, { detail: args }));
  }

  /** Signaling details for the console only (the tests print it on failure). */
  trace(...args) {
    console.log(`[${this.room}]`, ...args);
  }

  fail(e) {
    this.log('error', String(e));
    this.dispatchEvent(new CustomEvent('error', { detail: [e] }));
  }

  newPeerConnection() {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    // Before the offer or answer, which wait on this chain.
    this.chain = this.chain.then(() => this.applyIceServers(false));
    pc.onicecandidate = (e) => {
      if (e.candidate) {
        this.send({ type: 'candidate', candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex });
      }
    };
    pc.ontrack = (e) => this.dispatchEvent(new CustomEvent('track', { detail: [e.streams[0] || new MediaStream([e.track])] }));
    pc.ondatachannel = (e) => this.channelOpened(e.channel);
    pc.onconnectionstatechange = () => {
      this.event('connectionstate', pc.connectionState);
      clearTimeout(this.downTimer);
      if (pc.connectionState === 'failed') this.restartIce('the connection failed');
      if (pc.connectionState === 'disconnected') {
        this.downTimer = setTimeout(() => {
          if (pc.connectionState === 'disconnected') this.restartIce('the connection is disconnected');
        }, DISCONNECTED_RESTART_MS);
      }
    };
    pc.oniceconnectionstatechange = () => this.trace('ice connection state', pc.iceConnectionState);
    pc.onsignalingstatechange = () => this.trace('signaling state', pc.signalingState);
    for (const track of this.options.stream?.getTracks() || []) pc.addTrack(track, this.options.stream);
    return pc;
  }

  channelOpened(channel) {
    this.channel = channel;
    channel.binaryType = 'arraybuffer';
    this.dispatchEvent(new CustomEvent('channel', { detail: [channel] }));
  }

  send(message) {
    if (!this.ready && message.type !== 'bye') {
      this.trace('holding', describe(message));
      this.held.push(message);
      return;
    }
    this.trace('sending', describe(message));
    this.socket.emit('message', message);
  }

  async call() {
    if (this.options.dataChannel) this.channelOpened(this.pc.createDataChannel(this.options.dataChannel));
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.send({ type: 'offer', sdp: offer.sdp });
  }

  async onMessage(m) {
    if (m?.type === 'offer') this.called = true;
    if (m === 'bye' || m?.type === 'bye') {
      this.event('bye');
      this.close(false);
      return;
    }
    if (m?.type === 'offer') {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      this.send({ type: 'answer', sdp: answer.sdp });
    } else if (m?.type === 'answer') {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
    } else if (m?.type === 'candidate') {
      await this.pc.addIceCandidate({ candidate: m.candidate, sdpMid: m.sdpMid, sdpMLineIndex: m.sdpMLineIndex });
    }
  }

  /** Hangs up; tells the other side unless it was the one hanging up. */
  close(sendBye = true) {
    if (sendBye) this.send({ type: 'bye' });
    this.closed = true;
    clearTimeout(this.downTimer);
    this.pc.close();
    this.socket.emit('bye');
  }
}

/** A signaling message in a few words: its type, and a candidate's address. */
function describe(m) {
  if (typeof m !== 'object' || m === null) return JSON.stringify(m);
  if (m.type === 'candidate') return `candidate ${m.candidate || '(end)'}`;
  return m.type || JSON.stringify(m).slice(0, 80);
}
