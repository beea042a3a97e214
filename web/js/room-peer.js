// A peer connection signaled through a room of this server, with the
// codelab's Socket.IO protocol (needs /socket.io/socket.io.js loaded).
//
// The client that gets `created` is the initiator: on `ready` it (creates
// the data channel and) sends the offer. Messages are {type: offer|answer|
// candidate|bye}, handled strictly in order.
//
// The server's STUN and TURN servers (with a time-limited TURN credential,
// GET /api/ice-servers) are applied before anything is negotiated, so calls
// go through our relay when the peers cannot reach each other directly.

import { rtcConfiguration } from './ice-servers.js';

export class RoomPeer extends EventTarget {
  /**
   * @param {string} room
   * @param {{stream?: MediaStream, dataChannel?: string, log?: (...a) => void}} options
   */
  constructor(room, options = {}) {
    super();
    this.room = room;
    this.options = options;
    this.log = options.log || (() => {});
    this.initiator = false;
    this.chain = Promise.resolve();
    this.pc = this.newPeerConnection();
    this.socket = window.io.connect();
    const s = this.socket;
    s.on('connect', () => this.trace('socket connected', s.id));
    s.on('connect_error', (e) => this.trace('socket connect error', String(e)));
    s.on('disconnect', (why) => this.trace('socket disconnected', why));
    s.on('created', (r, id) => { this.initiator = true; this.event('created', r, id); });
    s.on('joined', (r, id) => this.event('joined', r, id));
    s.on('join', (r) => this.event('join', r));
    s.on('full', (r) => this.event('full', r));
    s.on('refused', (code, message) => this.event('refused', code, message));
    s.on('log', (line) => console.log(...line));
    s.on('ready', () => {
      this.event('ready');
      if (this.initiator) this.chain = this.chain.then(() => this.call()).catch((e) => this.fail(e));
    });
    s.on('message', (m) => {
      this.trace('received', describe(m));
      this.chain = this.chain.then(() => this.onMessage(m)).catch((e) => this.fail(e));
    });
    s.emit('create or join', room);
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
    // Before the offer or answer, which wait on this chain.
    this.chain = this.chain
      .then(() => rtcConfiguration())
      .then(({ iceServers }) => { if (iceServers?.length) pc.setConfiguration({ ...pc.getConfiguration(), iceServers }); })
      .catch((e) => this.trace('ICE servers not applied', String(e)));
    pc.onicecandidate = (e) => {
      if (e.candidate) {
        this.send({ type: 'candidate', candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex });
      }
    };
    pc.ontrack = (e) => this.dispatchEvent(new CustomEvent('track', { detail: [e.streams[0] || new MediaStream([e.track])] }));
    pc.ondatachannel = (e) => this.channelOpened(e.channel);
    pc.onconnectionstatechange = () => this.event('connectionstate', pc.connectionState);
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
