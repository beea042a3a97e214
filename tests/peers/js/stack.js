// The WebRTC stack peer-wrtc.js runs on: libwebrtc (@roamhq/wrtc) or werift,
// behind the three things where they differ from a browser.
// peerConnection(ice) takes {iceServers, iceTransportPolicy} (default: no
// servers, every candidate).
'use strict';

// Binary messages as an ArrayBuffer, whatever the stack hands out (werift
// gives a Buffer, a view into a larger pool).
function arrayBuffer(d) {
  if (typeof d === 'string' || d instanceof ArrayBuffer) return d;
  return d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength);
}

const NO_SERVERS = { iceServers: [] };

module.exports = function stack(name) {
  switch (name) {
    case 'wrtc': {
      const { RTCPeerConnection } = require('@roamhq/wrtc');
      return {
        peerConnection: (ice = NO_SERVERS) => new RTCPeerConnection(ice),
        data: arrayBuffer,
        send: (ch, d) => ch.send(d),
      };
    }
    case 'werift': {
      const { RTCPeerConnection } = require('werift');
      return {
        // werift leaves out loopback addresses unless told to add them.
        // werift takes one URL per server, a string.
        peerConnection: (ice = NO_SERVERS) => new RTCPeerConnection({
          ...ice,
          iceServers: ice.iceServers.flatMap((server) => [].concat(server.urls)
            .map((urls) => ({ ...server, urls }))),
          iceAdditionalHostAddresses: ['127.0.0.1'],
          iceUseIpv6: false,
        }),
        data: arrayBuffer,
        // werift's send takes a string or a Buffer only.
        send: (ch, d) => ch.send(typeof d === 'string' ? d : Buffer.from(arrayBuffer(d))),
      };
    }
    default:
      throw new Error('unknown --stack ' + name);
  }
};
