// A group call through the server's forwarding unit (SFU), signaled with
// the `sfu-...` frames of /ws (docs/sfu.md, protocol version 1).
//
// One RTCPeerConnection to the server: we offer what we publish (camera,
// microphone, a "room" data channel); the server answers, then offers
// whenever others' tracks come or go, and we answer. Every remote track
// arrives in a stream whose id is its publisher's participant id, so one
// tile per stream is one tile per participant.
//
// Events (CustomEvent, detail as listed): joined {participant, participants},
// tile {participant, stream}, tileremoved {participant}, speaker
// {participant}, state {state}, error {code, message}, message {from, text},
// redirect {room, url}.
//
// Version 2: a server whose rooms are placed across nodes answers a join
// with sfu-redirect when the room lives on another node; we open /ws there
// and join again (nothing was negotiated yet).

export const SFU_PROTOCOL_VERSION = 2;

/** Most redirects followed for one join (a loop between nodes ends). */
const MAX_REDIRECTS = 4;

/**
 * The camera's simulcast layers (RFC 8853 rids): a quarter, a half and
 * the full picture, lowest first, for a picture of `width` x `height`.
 * The server forwards each subscriber the highest layer its downlink
 * carries (docs/sfu.md), so a slow link costs its own picture, not the
 * others'. Each layer is capped at about 0.1 bit per pixel at 30 frames a
 * second (VP8's usual rate for a camera), at least 30 kbit/s, which keeps
 * the layers' rates apart.
 */
export function simulcastLayers(width, height) {
  return [['q', 4], ['h', 2], ['f', 1]].map(([rid, scale]) => ({
    rid,
    scaleResolutionDownBy: scale,
    maxBitrate: Math.max(30_000, Math.round((width * height * 30 * 0.1) / (scale * scale))),
  }));
}

export class SfuCall extends EventTarget {
  /**
   * @param {string} room
   * @param {{stream?: MediaStream, log?: (...a) => void, simulcast?: boolean}} options
   *   `simulcast` (default true): publish the camera in
   *   [simulcastLayers] where the browser can.
   */
  constructor(room, options = {}) {
    super();
    this.room = room;
    this.log = options.log || (() => {});
    this.stream = options.stream;
    this.simulcast = options.simulcast ?? true;
    this.participant = null;
    /** participant id -> {stream, receivers: RTCRtpReceiver[]} */
    this.tiles = new Map();
    this.speaker = null;
    this.chain = Promise.resolve();
    this.pc = new RTCPeerConnection();
    this.pc.onicecandidate = (e) => this.send({ type: 'sfu-candidate', candidate: e.candidate ? e.candidate.toJSON() : null });
    this.pc.onconnectionstatechange = () => this.emit('state', { state: this.pc.connectionState });
    this.pc.ontrack = (e) => this.onTrack(e);
    this.channel = this.pc.createDataChannel('room');
    this.channel.onmessage = (e) => this.emit('message', { text: e.data });
    this.redirects = 0;
    /** The base URL of the node we signal with. */
    this.node = location.origin;
    this.connect(this.node);
  }

  /** Opens /ws on the node at base URL `base` and joins the room there. */
  connect(base) {
    const url = new URL('/ws', base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      this.chain = this.chain.then(() => this.onFrame(frame)).catch((err) => this.fail(err));
    };
    ws.onclose = () => { if (this.ws === ws) this.log('signaling closed'); };
    ws.onopen = () => this.send({ type: 'sfu-join', room: this.room, version: SFU_PROTOCOL_VERSION });
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  send(frame) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  fail(e) {
    this.log('error', String(e));
    this.emit('error', { code: 'page', message: String(e) });
  }

  async onFrame(frame) {
    if (frame.type !== 'sfu-candidate') this.log('<-', frame.type, frame.participant ?? frame.code ?? frame.state ?? '');
    switch (frame.type) {
      case 'sfu-joined':
        this.participant = frame.participant;
        this.emit('joined', frame);
        await this.publish();
        break;
      case 'sfu-answer':
        await this.pc.setRemoteDescription({ type: 'answer', sdp: frame.sdp });
        break;
      case 'sfu-offer':
        // The server yields to our offer (it rolls its own back and offers
        // again after): ignore its offer while ours is out.
        if (this.pc.signalingState !== 'stable') break;
        await this.pc.setRemoteDescription({ type: 'offer', sdp: frame.sdp });
        await this.pc.setLocalDescription();
        this.send({ type: 'sfu-answer', sdp: this.pc.localDescription.sdp });
        break;
      case 'sfu-candidate':
        if (frame.candidate) await this.pc.addIceCandidate(frame.candidate);
        break;
      case 'sfu-participant-left':
        this.removeTile(frame.participant);
        break;
      case 'sfu-redirect':
        if (++this.redirects > MAX_REDIRECTS) throw new Error('too many redirects');
        this.log('room lives on', frame.url);
        this.node = frame.url;
        this.emit('redirect', frame);
        this.ws.close();
        this.connect(frame.url);
        break;
      case 'sfu-active-speaker':
        this.speaker = frame.participant;
        this.emit('speaker', frame);
        break;
      case 'sfu-connection-state':
        break;
      case 'sfu-error':
        this.emit('error', frame);
        break;
      default:
        break;
    }
  }

  /**
   * Our offer: the camera (in simulcast layers where the browser sends
   * them) and microphone (if any) and the room channel.
   */
  async publish() {
    for (const track of this.stream?.getTracks() || []) {
      if (track.kind === 'video' && this.simulcast && this.addSimulcast(track)) continue;
      this.pc.addTrack(track, this.stream);
    }
    await this.pc.setLocalDescription();
    this.send({ type: 'sfu-offer', sdp: this.pc.localDescription.sdp });
  }

  /**
   * Adds `track` with [simulcastLayers] of its picture; false where the
   * browser refuses send encodings (it is then sent as one stream).
   */
  addSimulcast(track) {
    const { width = 640, height = 480 } = track.getSettings();
    try {
      this.pc.addTransceiver(track, { streams: [this.stream], sendEncodings: simulcastLayers(width, height) });
      return true;
    } catch (err) {
      this.log('simulcast refused:', String(err));
      return false;
    }
  }

  onTrack(e) {
    const stream = e.streams[0];
    if (!stream) return;
    const participant = stream.id;
    let tile = this.tiles.get(participant);
    if (!tile) {
      tile = { stream, receivers: [], last: null, kbps: 0, frames: 0, audioPackets: 0, width: 0, height: 0 };
      this.tiles.set(participant, tile);
      this.emit('tile', { participant, stream });
    }
    tile.receivers.push(e.receiver);
  }

  removeTile(participant) {
    const id = String(participant);
    if (this.tiles.delete(id)) this.emit('tileremoved', { participant: id });
  }

  /** Sends a line to everyone in the room (the server relays it). */
  say(text) {
    if (this.channel.readyState === 'open') this.channel.send(text);
  }

  mute(muted) {
    this.send({ type: 'sfu-mute', muted });
  }

  /**
   * Per tile: bit/s received over the last call's interval, video frames
   * decoded and audio packets received so far.
   */
  async measure() {
    const now = performance.now();
    for (const tile of this.tiles.values()) {
      let bytes = 0;
      let frames = 0;
      let audioPackets = 0;
      let width = 0;
      let height = 0;
      for (const receiver of tile.receivers) {
        const stats = await receiver.getStats();
        stats.forEach((r) => {
          if (r.type !== 'inbound-rtp') return;
          bytes += r.bytesReceived || 0;
          if (r.kind === 'video') {
            frames += r.framesDecoded || 0;
            width = Math.max(width, r.frameWidth || 0);
            height = Math.max(height, r.frameHeight || 0);
          }
          if (r.kind === 'audio') audioPackets += r.packetsReceived || 0;
        });
      }
      // Over a second at least: two calls close together see the same
      // (cached) counters.
      if (!tile.last || now - tile.last.at >= 1000) {
        if (tile.last) tile.kbps = Math.round(((bytes - tile.last.bytes) * 8) / (now - tile.last.at));
        tile.last = { bytes, at: now };
      }
      tile.frames = frames;
      tile.audioPackets = audioPackets;
      tile.width = width;
      tile.height = height;
    }
    return this.state();
  }

  /**
   * What we send of the camera: per layer (rid, or '' for one stream) the
   * picture's size and the frames encoded so far.
   */
  async published() {
    const layers = [];
    for (const sender of this.pc.getSenders()) {
      if (sender.track?.kind !== 'video') continue;
      const stats = await sender.getStats();
      stats.forEach((r) => {
        if (r.type !== 'outbound-rtp') return;
        layers.push({
          rid: r.rid || '',
          width: r.frameWidth || 0,
          height: r.frameHeight || 0,
          frames: r.framesEncoded || 0,
          bytes: r.bytesSent || 0,
          limitation: r.qualityLimitationReason,
          target: r.targetBitrate,
        });
      });
    }
    const order = ['q', 'h', 'f'];
    return layers.sort((a, b) => order.indexOf(a.rid) - order.indexOf(b.rid));
  }

  /** What the page shows, for people and for tests. */
  state() {
    return {
      participant: this.participant,
      node: this.node,
      connectionState: this.pc.connectionState,
      speaker: this.speaker,
      tiles: [...this.tiles.entries()].map(([participant, t]) => ({
        participant,
        kbps: t.kbps,
        frames: t.frames,
        audioPackets: t.audioPackets,
        width: t.width,
        height: t.height,
        audioTracks: t.stream.getAudioTracks().length,
        videoTracks: t.stream.getVideoTracks().length,
      })),
    };
  }

  leave() {
    this.send({ type: 'sfu-leave' });
    this.pc.close();
    this.ws.close();
  }
}
