//! A plot of a run: capacity, each flow's target and sent rate, and the
//! queuing delay, over time. Plain SVG, no dependencies.

use std::fmt::Write;

use crate::{Outcome, BIN};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 300.0;
const DELAY_HEIGHT: f64 = 120.0;
const MARGIN: f64 = 50.0;
const COLORS: [&str; 4] = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b"];

fn polyline(out: &mut String, points: &[(f64, f64)], color: &str, dashed: bool) {
    let dash = if dashed {
        " stroke-dasharray=\"4 3\""
    } else {
        ""
    };
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"{dash} points=\""
    );
    for (x, y) in points {
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.push_str("\"/>\n");
}

/// The SVG document for `outcome`.
pub fn svg(outcome: &Outcome) -> String {
    let s = &outcome.scenario;
    let bins = (s.duration.as_nanos() / BIN.as_nanos()) as usize;
    let max_rate = s
        .capacity
        .iter()
        .map(|(_, c)| c.as_f64())
        .fold(0.0, f64::max)
        * 1.5;
    let x = |i: usize| MARGIN + WIDTH * i as f64 / bins as f64;
    let y = |bps: f64| MARGIN + HEIGHT - HEIGHT * (bps / max_rate).min(1.0);
    let total_h = HEIGHT + DELAY_HEIGHT + 3.0 * MARGIN;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{total_h}\" font-family=\"sans-serif\" font-size=\"12\">",
        WIDTH + 2.0 * MARGIN
    );
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let _ = writeln!(out, "<text x=\"{MARGIN}\" y=\"20\">{}: capacity (red), target (solid), sent rate (dashed); queuing delay below</text>", s.name);
    for mbps in 1..=((max_rate / 1e6) as usize) {
        let yy = y(mbps as f64 * 1e6);
        let _ = writeln!(out, "<line x1=\"{MARGIN}\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"5\" y=\"{yy}\">{mbps} Mb/s</text>", MARGIN + WIDTH);
    }
    let capacity: Vec<_> = (0..bins)
        .map(|i| (x(i), y(s.capacity_at(BIN * i as u32).as_f64())))
        .collect();
    polyline(&mut out, &capacity, "#d62728", false);
    for (n, flow) in outcome.flows.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let target: Vec<_> = flow
            .sent
            .iter()
            .take(bins)
            .enumerate()
            .map(|(i, b)| (x(i), y(b.target.as_f64())))
            .collect();
        polyline(&mut out, &target, color, false);
        let sent: Vec<_> = flow
            .sent
            .iter()
            .take(bins)
            .enumerate()
            .map(|(i, b)| (x(i), y(b.sent_bytes as f64 * 8.0 / BIN.as_secs_f64())))
            .collect();
        polyline(&mut out, &sent, color, true);
    }
    // Queuing delay, 0..=300 ms.
    let top = 2.0 * MARGIN + HEIGHT;
    let base = outcome
        .flows
        .iter()
        .flat_map(|f| f.received.iter().map(|b| b.max_delay))
        .filter(|d| !d.is_zero())
        .min()
        .unwrap_or_default();
    let dy = |ms: f64| top + DELAY_HEIGHT - DELAY_HEIGHT * (ms / 300.0).min(1.0);
    for ms in [100.0, 200.0, 300.0] {
        let (yy, right) = (dy(ms), MARGIN + WIDTH);
        let _ = writeln!(out, "<line x1=\"{MARGIN}\" x2=\"{right}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"5\" y=\"{yy}\">{ms} ms</text>");
    }
    for (n, flow) in outcome.flows.iter().enumerate() {
        let delay: Vec<_> = flow
            .received
            .iter()
            .take(bins)
            .enumerate()
            .map(|(i, b)| {
                (
                    x(i),
                    dy(b.max_delay.saturating_sub(base).as_secs_f64() * 1000.0),
                )
            })
            .collect();
        polyline(&mut out, &delay, COLORS[n % COLORS.len()], false);
    }
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"{}\">time: 0 to {} s</text>",
        total_h - 10.0,
        s.duration.as_secs()
    );
    out.push_str("</svg>\n");
    out
}
