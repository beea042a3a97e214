#!/usr/bin/env python3
"""Interop peer on aiortc (pip `aiortc`), speaking the JSON signaling of
tests/peers/js/relay.js in peer-wrtc.js's --mode echo: both roles create the
negotiated channel id 5, the offerer also "control"; every message on every
channel comes back unchanged (text as text, binary as binary), and the text
"__dcinfo__" is answered with the channel's parameters as JSON.

    python3 peer.py --url ws://10.99.0.1:PORT/room --role offerer|answerer

aiortc gathers no loopback address (run it where an interface has one) and
does not trickle: its descriptions carry its candidates; ours arrive as
`candidate` messages.
"""
import argparse
import asyncio
import json
import sys

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp
import websockets

NEGOTIATED_ID = 5


def log(msg):
    print("[aiortc] " + msg, file=sys.stderr, flush=True)


def dcinfo(ch):
    return {
        "label": ch.label,
        "protocol": ch.protocol,
        "ordered": ch.ordered,
        "maxRetransmits": ch.maxRetransmits,
        "maxPacketLifeTime": ch.maxPacketLifeTime,
        "negotiated": ch.negotiated,
        "id": ch.id,
    }


def echo(ch):
    @ch.on("message")
    def on_message(m):
        if m == "__dcinfo__":
            m = json.dumps({"dcinfo": dcinfo(ch)})
        ch.send(m)

    @ch.on("open")
    def on_open():
        log("channel open: %s" % dcinfo(ch))


async def run(args):
    # --ice-servers: an RTCIceServer list as JSON (realtimer serve's
    # /api/ice-servers); --relay: iceTransportPolicy relay.
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in json.loads(args.ice_servers)
    ]
    policy = RTCIceTransportPolicy.RELAY if args.relay else RTCIceTransportPolicy.ALL
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))

    @pc.on("connectionstatechange")
    def on_state():
        log("connectionState %s" % pc.connectionState)

    @pc.on("datachannel")
    def on_channel(ch):
        log("remote channel %s" % ch.label)
        echo(ch)

    echo(pc.createDataChannel("negotiated-5", negotiated=True, id=NEGOTIATED_ID))
    async with websockets.connect(args.url, max_size=1 << 20) as ws:
        if args.role == "offerer":
            echo(pc.createDataChannel("control"))
            await pc.setLocalDescription(await pc.createOffer())
            await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
        async for text in ws:
            m = json.loads(text)
            kind = m.get("type")
            if kind in ("offer", "answer"):
                await pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type=kind))
                if kind == "offer":
                    await pc.setLocalDescription(await pc.createAnswer())
                    await ws.send(json.dumps({"type": "answer", "sdp": pc.localDescription.sdp}))
            elif kind == "candidate" and m.get("candidate"):
                c = candidate_from_sdp(m["candidate"].removeprefix("a=").split(":", 1)[1])
                c.sdpMid = m.get("sdpMid")
                c.sdpMLineIndex = m.get("sdpMLineIndex")
                await pc.addIceCandidate(c)
            elif kind in ("bye", "peer-left"):
                log("remote said %s" % kind)
                break
    await pc.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--role", choices=["offerer", "answerer"], default="answerer")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--ice-servers", default="[]")
    p.add_argument("--relay", action="store_true")
    args = p.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        log("timeout %s s, exiting" % args.timeout)
        sys.exit(3)


if __name__ == "__main__":
    main()
