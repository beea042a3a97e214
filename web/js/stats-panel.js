// A live stats panel for an RTCPeerConnection: bitrate (sent and
// received), round-trip time and packets lost, sampled from getStats() once
// a second and plotted over the last minute.

const SERIES = [
  { key: 'bitrate', title: 'Bitrate', unit: 'kbit/s', lines: [['outKbps', '#2f6fec', 'sent'], ['inKbps', '#2e7d32', 'received']] },
  { key: 'rtt', title: 'Round-trip time', unit: 'ms', lines: [['rttMs', '#8e44ad', 'RTT']] },
  { key: 'lost', title: 'Packets lost', unit: 'packets', lines: [['lost', '#c62828', 'lost (total)']] },
];

export class StatsPanel {
  /**
   * @param {HTMLElement} container where the charts go
   * @param {RTCPeerConnection} pc
   * @param {{intervalMs?: number, points?: number}} options
   */
  constructor(container, pc, { intervalMs = 1000, points = 60 } = {}) {
    this.pc = pc;
    this.points = points;
    this.intervalMs = intervalMs;
    /** @type {{t: number, outKbps: number, inKbps: number, rttMs: number, lost: number}[]} */
    this.samples = [];
    this.last = null;
    container.classList.add('stats');
    this.charts = SERIES.map((s) => {
      const box = document.createElement('figure');
      box.className = 'chart';
      const caption = document.createElement('figcaption');
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 90;
      box.append(caption, canvas);
      container.append(box);
      return { ...s, caption, canvas };
    });
    this.draw();
  }

  start() {
    this.stop();
    this.timer = setInterval(() => this.sample().catch(() => {}), this.intervalMs);
    return this;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sample() {
    if (this.pc.connectionState === 'closed') { this.stop(); return; }
    const report = await this.pc.getStats();
    let bytesSent = 0, bytesReceived = 0, rtt = null, lost = 0;
    const pairs = [];
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.state === 'succeeded') pairs.push(s);
      if (s.type === 'inbound-rtp') lost += s.packetsLost || 0;
    });
    // The selected pair: the transport's, else the nominated one.
    let selected = null;
    report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) selected = report.get(s.selectedCandidatePairId); });
    selected = selected || pairs.find((p) => p.nominated) || pairs[0];
    if (selected) {
      bytesSent = selected.bytesSent || 0;
      bytesReceived = selected.bytesReceived || 0;
      if (typeof selected.currentRoundTripTime === 'number') rtt = selected.currentRoundTripTime * 1000;
    }
    const t = performance.now();
    if (this.last) {
      const dt = (t - this.last.t) / 1000;
      this.samples.push({
        t,
        outKbps: Math.max(0, (bytesSent - this.last.bytesSent) * 8 / 1000 / dt),
        inKbps: Math.max(0, (bytesReceived - this.last.bytesReceived) * 8 / 1000 / dt),
        rttMs: rtt ?? 0,
        lost,
      });
      if (this.samples.length > this.points) this.samples.shift();
      this.draw();
    }
    this.last = { t, bytesSent, bytesReceived };
  }

  draw() {
    const latest = this.samples[this.samples.length - 1];
    for (const c of this.charts) {
      const now = latest
        ? c.lines.map(([k, , label]) => `${label} ${fmt(latest[k])}`).join(' · ')
        : 'waiting for samples';
      c.caption.textContent = `${c.title} (${c.unit}): ${now}`;
      const g = c.canvas.getContext('2d');
      const { width: w, height: h } = c.canvas;
      g.clearRect(0, 0, w, h);
      g.strokeStyle = '#e3e7ef';
      g.lineWidth = 1;
      for (let i = 1; i < 4; i++) { g.beginPath(); g.moveTo(0, (h * i) / 4); g.lineTo(w, (h * i) / 4); g.stroke(); }
      const max = Math.max(1, ...this.samples.flatMap((s) => c.lines.map(([k]) => s[k])));
      g.fillStyle = '#5b6577';
      g.font = '10px system-ui, sans-serif';
      g.fillText(fmt(max), 2, 10);
      for (const [k, color] of c.lines) {
        g.strokeStyle = color;
        g.lineWidth = 2;
        g.beginPath();
        this.samples.forEach((s, i) => {
          const x = (w * i) / Math.max(1, this.points - 1);
          const y = h - 2 - ((h - 14) * s[k]) / max;
          if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
        });
        g.stroke();
      }
    }
  }
}

function fmt(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return v >= 10 ? v.toFixed(0) : v.toFixed(1);
}
