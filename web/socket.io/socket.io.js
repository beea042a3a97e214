// realtimer's small Socket.IO client, served at /socket.io/socket.io.js.
// Enough of the official client's API for the WebRTC codelab's pages:
//   const socket = io.connect();          // or io(), io(url)
//   socket.emit('create or join', room);  // queued until connected
//   socket.on('created', (room, id) => ...);
//   socket.id, socket.connected, socket.disconnect()
// It speaks Socket.IO protocol v5 over Engine.IO v4, WebSocket transport only.
//
// Like the official client's Manager, a connection that closes (the server
// restarted, the network dropped) is opened again with exponential backoff:
// the n-th attempt waits min(reconnectionDelayMax, reconnectionDelay * 2^n),
// spread by +/- randomizationFactor so that the clients of a restarted
// server do not all come back at once; `reconnect_attempt` (n) fires before
// each attempt, then `connect` again with the new id. Events emitted while
// disconnected are queued and sent once connected. Only disconnect() and
// the server's own Socket.IO disconnect stop it (as in the official client).
(function (global) {
  'use strict';

  function Socket(url, options) {
    options = options || {};
    this.reconnection = options.reconnection !== false;
    this.reconnectionDelay = options.reconnectionDelay || 1000;
    this.reconnectionDelayMax = options.reconnectionDelayMax || 5000;
    this.randomizationFactor = options.randomizationFactor === undefined ? 0.5 : options.randomizationFactor;
    this.attempts = 0;
    this.closed = false;
    this.handlers = {};
    this.queue = [];
    this.connected = false;
    this.id = undefined;
    var base = url ? new URL(url, location.href) : new URL(location.href);
    var scheme = base.protocol === 'https:' ? 'wss:' : 'ws:';
    this.url = scheme + '//' + base.host + '/socket.io/?EIO=4&transport=websocket';
    this.open();
  }

  Socket.prototype.open = function () {
    var self = this;
    var ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = function (e) { self.onPacket(String(e.data)); };
    ws.onclose = function () {
      if (self.ws !== ws) return;
      var was = self.connected;
      self.connected = false;
      if (was) self.fire('disconnect', ['transport close']);
      else self.fire('connect_error', [new Error('connection failed')]);
      self.reconnect();
    };
  };

  // The next attempt after a backoff (the official client's formula).
  Socket.prototype.reconnect = function () {
    if (this.closed || !this.reconnection || this.timer) return;
    var delay = Math.min(this.reconnectionDelayMax, this.reconnectionDelay * Math.pow(2, this.attempts));
    var spread = delay * this.randomizationFactor * (Math.random() * 2 - 1);
    delay = Math.max(0, Math.min(this.reconnectionDelayMax, Math.round(delay + spread)));
    this.attempts++;
    var self = this;
    this.timer = setTimeout(function () {
      self.timer = undefined;
      if (self.closed) return;
      self.fire('reconnect_attempt', [self.attempts]);
      self.open();
    }, delay);
  };

  // Engine.IO v4 packets: 0 open, 2 ping, 3 pong, 4 message; the message
  // carries a Socket.IO packet: 0 connect, 1 disconnect, 2 event, 4 error.
  Socket.prototype.onPacket = function (data) {
    var type = data.charAt(0);
    if (type === '0') { this.ws.send('40'); return; }
    if (type === '2') { this.ws.send('3'); return; }
    if (type !== '4') return;
    var sioType = data.charAt(1);
    var body = data.slice(2);
    if (sioType === '0') {
      try { this.id = JSON.parse(body).sid; } catch (e) { this.id = undefined; }
      this.connected = true;
      this.attempts = 0;
      var pending = this.queue.splice(0);
      for (var i = 0; i < pending.length; i++) this.ws.send(pending[i]);
      this.fire('connect', []);
    } else if (sioType === '2') {
      var start = body.indexOf('[');
      if (start < 0) return;
      var args;
      try { args = JSON.parse(body.slice(start)); } catch (e) { return; }
      if (!Array.isArray(args) || typeof args[0] !== 'string') return;
      this.fire(args[0], args.slice(1));
    } else if (sioType === '4') {
      this.fire('connect_error', [new Error(body)]);
    } else if (sioType === '1') {
      this.connected = false;
      this.closed = true;
      var ws = this.ws;
      this.ws = undefined;
      ws.close();
      this.fire('disconnect', ['io server disconnect']);
    }
  };

  Socket.prototype.fire = function (event, args) {
    var list = this.handlers[event] || [];
    for (var i = 0; i < list.length; i++) list[i].apply(this, args);
  };

  Socket.prototype.on = function (event, fn) {
    (this.handlers[event] = this.handlers[event] || []).push(fn);
    return this;
  };

  Socket.prototype.off = function (event, fn) {
    var list = this.handlers[event] || [];
    this.handlers[event] = fn ? list.filter(function (f) { return f !== fn; }) : [];
    return this;
  };

  Socket.prototype.emit = function (event) {
    var args = Array.prototype.slice.call(arguments);
    var packet = '42' + JSON.stringify(args);
    if (this.connected) this.ws.send(packet);
    else this.queue.push(packet);
    return this;
  };

  Socket.prototype.disconnect = Socket.prototype.close = function () {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.ws) this.ws.close();
    return this;
  };

  function io(url, options) {
    if (url && typeof url === 'object') { options = url; url = undefined; }
    return new Socket(url, options);
  }
  io.connect = io;
  io.Socket = Socket;
  global.io = io;
})(typeof window !== 'undefined' ? window : globalThis);
