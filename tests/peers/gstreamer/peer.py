#!/usr/bin/python3
"""Interop peer on GStreamer's webrtcbin, speaking the JSON signaling of
tests/peers/js/relay.js (offer/answer/candidate/bye).

As the offerer (default) it sends VP8 video (videotestsrc) and Opus audio
(audiotestsrc). As the answerer (--role answerer) it answers an offer of
VP8 and Opus, each section send-receive, and sends back what it receives:
the frames are depayloaded and payloaded again by GStreamer (new SSRC,
sequence numbers and packet boundaries; the same VP8 frames and Opus
packets). Either way it records what the other peer sends into a Matroska
file, one track per kind, for ffprobe to check. After --seconds (counted
from the first media it receives when answering) it says bye, finishes the
file and prints `RECEIVED kind=N` (RTP buffers per kind) and
`RECORDED path`; with --answer-out it also writes its answer SDP there.

    /usr/bin/python3 peer.py --url ws://127.0.0.1:PORT/room --out echo.mkv
    /usr/bin/python3 peer.py --role answerer --url ... --out received.mkv

Needs Debian's gstreamer1.0-plugins-{base,good,bad}, gstreamer1.0-nice,
python3-gi, gir1.2-gst-plugins-bad-1.0 and python3-websocket.
"""
import argparse
import json
import re
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402
import websocket  # noqa: E402

SEND = (
    "webrtcbin name=webrtc bundle-policy=max-bundle "
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 "
    "! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 "
    "! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! webrtc. "
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc "
    "! rtpopuspay pt=111 "
    "! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! webrtc. "
    "matroskamux name=mux ! filesink name=sink"
)

# The answerer starts with webrtcbin and the recording only; the sending
# branches are built from the offer's payload types.
ANSWER = "webrtcbin name=webrtc bundle-policy=max-bundle matroskamux name=mux ! filesink name=sink"

# Per kind: the encoding we take, its clock rate, depayloader, payloader and
# the parser in front of the muxer.
KINDS = {
    "video": ("VP8", 90000, "rtpvp8depay", "rtpvp8pay", "identity"),
    "audio": ("OPUS", 48000, "rtpopusdepay", "rtpopuspay", "opusparse"),
}


def offered_payload_types(sdp):
    """{kind: (m-line index, payload type)} of VP8 and Opus in an offer
    (the first section and payload type of each)."""
    found, kind, index = {}, None, -1
    for line in sdp.splitlines():
        m = re.match(r"m=([a-z]+) ", line)
        if m:
            index += 1
            kind = m.group(1) if m.group(1) in KINDS else None
            continue
        m = re.match(r"a=rtpmap:(\d+) ([A-Za-z0-9]+)/", line)
        if m and kind and kind not in found and m.group(2).upper() == KINDS[kind][0]:
            found[kind] = (index, int(m.group(1)))
    return found


def log(msg):
    print("[gstreamer] " + msg, file=sys.stderr, flush=True)


class Peer:
    def __init__(self, args):
        self.args = args
        self.answering = args.role == "answerer"
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(ANSWER if self.answering else SEND)
        self.pipe.get_by_name("sink").set_property("location", args.out)
        self.webrtc = self.pipe.get_by_name("webrtc")
        self.mux = self.pipe.get_by_name("mux")
        self.received = {"audio": 0, "video": 0}
        self.recording = set()
        # Both muxer pads up front: Matroska writes its header once every
        # requested pad has caps, so neither track comes too late.
        self.mux_pads = {
            "video": self.mux.request_pad_simple("video_%u"),
            "audio": self.mux.request_pad_simple("audio_%u"),
        }
        self.queues = []
        # Answerer: per kind, the payloader whose output goes back.
        self.senders = {}
        self.started = False
        sink_pad = self.pipe.get_by_name("sink").get_static_pad("sink")
        sink_pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self.on_sink_event)
        if not self.answering:
            self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self.on_ice_candidate)
        self.webrtc.connect("pad-added", self.on_pad_added)
        self.ws = websocket.create_connection(args.url)
        self.remote_set = False
        self.pending = []
        self.exit_code = 1

    # ---- signaling ----
    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def read_signaling(self):
        while True:
            try:
                text = self.ws.recv()
            except Exception as e:  # the relay went away
                log("signaling closed: %s" % e)
                GLib.idle_add(self.finish)
                return
            if not text:
                GLib.idle_add(self.finish)
                return
            GLib.idle_add(self.on_signal, json.loads(text))

    def on_signal(self, msg):
        kind = msg.get("type")
        if kind == "offer" and self.answering:
            self.on_offer(msg["sdp"])
        elif kind == "answer":
            ok, sdp = GstSdp.SDPMessage.new_from_text(msg["sdp"])
            answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
            self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
            self.remote_set = True
            for c in self.pending:
                self.add_candidate(c)
            self.pending = []
        elif kind == "candidate" and msg.get("candidate"):
            if self.remote_set:
                self.add_candidate(msg)
            else:
                self.pending.append(msg)
        elif kind in ("bye", "peer-left"):
            log("remote said " + kind)
            self.finish()
        return False

    def add_candidate(self, msg):
        cand = msg["candidate"]
        if cand.startswith("a="):
            cand = cand[2:]
        log("remote candidate " + cand)
        self.webrtc.emit("add-ice-candidate", msg.get("sdpMLineIndex") or 0, cand)

    def on_negotiation_needed(self, element):
        self.offer_tries = 0
        self.create_offer()

    def create_offer(self):
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, self.webrtc, None)
        self.webrtc.emit("create-offer", None, promise)
        return False

    def on_offer_created(self, promise, element, _):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None or offer.sdp is None:
            # Seen once at start-up, before the encoders' caps were known:
            # try again a little later.
            self.offer_tries += 1
            log("create-offer failed (%d): %s" % (self.offer_tries, reply.to_string() if reply else "no reply"))
            if self.offer_tries < 10:
                GLib.timeout_add(200, self.create_offer)
            else:
                GLib.idle_add(self.quit)
            return
        element.emit("set-local-description", offer, Gst.Promise.new())
        self.send({"type": "offer", "sdp": offer.sdp.as_text()})

    def on_offer(self, text):
        """Adds a send-receive transceiver per offered kind, sets the
        offer, links a payloader to each transceiver, then answers."""
        self.offered = offered_payload_types(text)
        log("offer's (m-line, payload type) %s" % self.offered)
        for media, (_, pt) in sorted(self.offered.items()):
            self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.SENDRECV,
                             self.rtp_caps(media, pt))
        ok, sdp = GstSdp.SDPMessage.new_from_text(text)
        offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, sdp)
        promise = Gst.Promise.new_with_change_func(self.on_offer_set)
        self.webrtc.emit("set-remote-description", offer, promise)
        self.remote_set = True
        for c in self.pending:
            self.add_candidate(c)
        self.pending = []

    @staticmethod
    def rtp_caps(media, pt):
        enc, rate = KINDS[media][:2]
        return Gst.Caps.from_string(
            "application/x-rtp,media=%s,encoding-name=%s,payload=%d,clock-rate=%d"
            % (media, enc, pt, rate))

    def on_offer_set(self, promise, *_):
        promise.wait()
        GLib.idle_add(self.link_senders)

    def link_senders(self):
        """Per kind: tee -> queue -> payloader -> caps -> webrtcbin's sink
        pad of the transceiver at that m-line (named sink_<m-line>, which
        webrtcbin gives the transceiver the offer put there)."""
        for media, (mline, pt) in sorted(self.offered.items()):
            pay = Gst.ElementFactory.make(KINDS[media][3])
            pay.set_property("pt", pt)
            tee = Gst.ElementFactory.make("tee")
            tee.set_property("allow-not-linked", True)
            filt = Gst.ElementFactory.make("capsfilter")
            filt.set_property("caps", self.rtp_caps(media, pt))
            for e in (tee, pay, filt):
                self.pipe.add(e)
                e.sync_state_with_parent()
            queue = self.queue()
            tee.link(queue)
            queue.link(pay)
            pay.link(filt)
            sink = self.webrtc.request_pad_simple("sink_%d" % mline)
            log("%s goes back on m-line %d" % (media, sink.get_property("transceiver").get_property("mlineindex")))
            filt.get_static_pad("src").link(sink)
            self.senders[media] = tee
        promise = Gst.Promise.new_with_change_func(self.on_answer_created)
        self.webrtc.emit("create-answer", None, promise)
        return False

    def on_answer_created(self, promise, *_):
        promise.wait()
        reply = promise.get_reply()
        answer = reply.get_value("answer") if reply else None
        if answer is None or answer.sdp is None:
            log("create-answer failed: %s" % (reply.to_string() if reply else "no reply"))
            GLib.idle_add(self.quit)
            return
        self.webrtc.emit("set-local-description", answer, Gst.Promise.new())
        text = answer.sdp.as_text()
        if self.args.answer_out:
            with open(self.args.answer_out, "w") as f:
                f.write(text)
        self.send({"type": "answer", "sdp": text})

    def on_ice_candidate(self, _element, mline, candidate):
        log("local candidate " + candidate)
        # webrtcbin names no mid here; the index is enough (RFC 8839 §5.1).
        self.send({"type": "candidate", "candidate": candidate, "sdpMid": None, "sdpMLineIndex": mline})

    # ---- media from the other side ----
    def on_pad_added(self, _element, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        media = s.get_string("media")
        enc = (s.get_string("encoding-name") or "").upper()
        log("incoming %s %s" % (media, enc))
        if media in self.recording:
            pad.link(self.fakesink())
            return
        self.recording.add(media)
        _, _, depay_name, _, parse_name = KINDS[media]
        depay = Gst.ElementFactory.make(depay_name)
        parse = Gst.ElementFactory.make(parse_name)
        q = Gst.ElementFactory.make("queue")
        for e in (q, depay, parse):
            self.pipe.add(e)
            e.sync_state_with_parent()
        pad.add_probe(Gst.PadProbeType.BUFFER, self.count, media)
        pad.link(q.get_static_pad("sink"))
        q.link(depay)
        tee = self.senders.get(media)
        if tee is not None:
            # The frames go to the recording and back to the peer.
            depay.link(tee)
            to_mux = self.queue()
            tee.link(to_mux)
            to_mux.link(parse)
        else:
            depay.link(parse)
        parse.get_static_pad("src").link(self.mux_pads[media])
        self.queues.append(q)
        if self.answering and not self.started:
            self.started = True
            GLib.timeout_add_seconds(self.args.seconds, self.stop)

    def queue(self):
        q = Gst.ElementFactory.make("queue")
        self.pipe.add(q)
        q.sync_state_with_parent()
        return q

    def fakesink(self):
        sink = Gst.ElementFactory.make("fakesink")
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        return sink.get_static_pad("sink")

    def count(self, _pad, _info, media):
        self.received[media] += 1
        return Gst.PadProbeReturn.OK

    # ---- lifecycle ----
    def stop(self):
        log("%d s passed: bye" % self.args.seconds)
        self.send({"type": "bye"})
        self.finish()
        return False

    def finish(self):
        if getattr(self, "finishing", False):
            return False
        self.finishing = True
        # EOS into the receiving branches finishes the file (the filesink
        # sees it: on_sink_event); give up after 5 s so a stalled branch
        # cannot hang the test.
        for q in self.queues:
            q.get_static_pad("sink").send_event(Gst.Event.new_eos())
        for media, pad in self.mux_pads.items():
            if media not in self.recording:
                pad.send_event(Gst.Event.new_eos())
        GLib.timeout_add_seconds(5, self.quit)
        return False

    def on_sink_event(self, _pad, info):
        if info.get_event().type == Gst.EventType.EOS:
            log("recording finished")
            GLib.idle_add(self.quit)
        return Gst.PadProbeReturn.OK

    def on_bus(self, _bus, message):
        if message.type == Gst.MessageType.EOS:
            self.quit()
        elif message.type == Gst.MessageType.ERROR:
            err, dbg = message.parse_error()
            log("error: %s (%s)" % (err, dbg))
            self.quit()
        return True

    def quit(self):
        if self.loop.is_running():
            self.loop.quit()
        return False

    def run(self):
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_bus)
        threading.Thread(target=self.read_signaling, daemon=True).start()
        self.pipe.set_state(Gst.State.PLAYING)
        if not self.answering:
            GLib.timeout_add_seconds(self.args.seconds, self.stop)
        GLib.timeout_add_seconds(self.args.timeout, self.quit)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        for media, n in sorted(self.received.items()):
            print("RECEIVED %s=%d" % (media, n), flush=True)
        print("RECORDED " + self.args.out, flush=True)
        return 0 if all(self.received.values()) else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--role", choices=("offerer", "answerer"), default="offerer")
    p.add_argument("--answer-out", help="answerer: write the answer SDP here")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--timeout", type=int, default=60)
    args = p.parse_args()
    Gst.init(None)
    sys.exit(Peer(args).run())


if __name__ == "__main__":
    main()
