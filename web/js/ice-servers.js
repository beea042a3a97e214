// The STUN and TURN servers of the server this page came from, with a
// time-limited TURN credential (GET /api/ice-servers, docs/config.md), as an
// RTCConfiguration. Fetched once per page, and again when asked to (after
// the server restarted, its TURN allocations and perhaps its credentials
// are gone).

let cached;

/**
 * @param {{fresh?: boolean}} [options] fresh: fetch again instead of reusing the page's copy
 * @returns {Promise<RTCConfiguration>} {iceServers} from the server, or {} if it has none.
 */
export async function rtcConfiguration({ fresh = false } = {}) {
  if (fresh) cached = undefined;
  cached ??= fetch('/api/ice-servers', { cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : {}))
    .then((body) => (body.iceServers ? { iceServers: body.iceServers } : {}))
    .catch(() => ({}));
  return cached;
}

/** True when a TURN URL uses `transport`: 'udp', 'tcp' (turn:) or 'tls' (turns:). */
function usesTransport(url, transport) {
  if (transport === 'tls') return url.startsWith('turns:');
  return url.startsWith('turn:') && url.endsWith(`transport=${transport}`);
}

/**
 * A configuration that reaches peers only through this server's TURN relay
 * (iceTransportPolicy 'relay'), optionally only over `transport` ('udp',
 * 'tcp' or 'tls'), e.g. to test the relay or to hide the host's addresses.
 * @param {string} [transport]
 * @returns {Promise<RTCConfiguration>}
 */
export async function relayOnly(transport, { fresh = false } = {}) {
  const { iceServers = [] } = await rtcConfiguration({ fresh });
  const turn = iceServers
    .map((s) => ({ ...s, urls: [].concat(s.urls).filter((u) => /^turns?:/.test(u) && (!transport || usesTransport(u, transport))) }))
    .filter((s) => s.urls.length > 0);
  return { iceServers: turn, iceTransportPolicy: 'relay' };
}
