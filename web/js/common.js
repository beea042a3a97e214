// Helpers shared by the pages.

/** `$('id')`: the element with this id. */
export const $ = (id) => document.getElementById(id);

/** Appends a line to a <pre> or <ol> log. */
export function log(target, ...parts) {
  const text = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  if (target.tagName === 'OL') {
    const li = document.createElement('li');
    li.textContent = text;
    target.append(li);
  } else {
    target.textContent += text + '\n';
  }
  console.log(text);
}

/** Shows a getUserMedia error by name, as a person can act on it. */
export function mediaErrorText(e) {
  const hints = {
    NotAllowedError: 'permission to use the camera or microphone was denied',
    NotFoundError: 'no camera or microphone matches',
    OverconstrainedError: `no device satisfies the constraint ${e.constraint || ''}`,
    NotReadableError: 'the device is in use by another program',
  };
  return `${e.name}: ${hints[e.name] || e.message}`;
}

/** The room from ?room=..., else a random one put in the URL. */
export function roomFromUrl() {
  const params = new URLSearchParams(location.search);
  let room = params.get('room');
  if (!room) {
    room = Math.random().toString(36).slice(2, 8);
    params.set('room', room);
    history.replaceState(null, '', `?${params}`);
  }
  return room;
}
