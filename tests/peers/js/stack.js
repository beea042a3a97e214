// The WebRTC stack peer-wrtc.js runs on: libwebrtc (@roamhq/wrtc) or werift,
// behind the three things where they differ from a browser.
'use strict';

// Binary messages as an ArrayBuffer, whatever the stack hands out (werift
// gives a Buffer, a view into a larger pool).
function arrayBuffer(d) {
  if (typeof d === 'string' || d instanceof ArrayBuffer) return d;
  return d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength);
}

module.exports = function stack(name) {
  switch (name) {
    case 'wrtc': {
      const { RTCPeerConnection } = require('@roamhq/wrtc');
      return {
        peerConnection: () => new RTCPeerConnection({ iceServers: [] }),
        data: arrayBuffer,
        send: (ch, d) => ch.send(d),
      };
    }
    case 'werift': {
      const { RTCPeerConnection } = require('werift');
      return {
        // werift leaves out loopback addresses unless told to add them.
        peerConnection: () => new RTCPeerConnection({
          iceServers: [],
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
