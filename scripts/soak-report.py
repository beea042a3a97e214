#!/usr/bin/env python3
"""Judges and plots scripts/soak's CSV.

    soak-report.py soak.csv soak.svg WARMUP_PCT FLEET_STATUS

Prints a summary; exits 1 if the fleet failed, serve logged an error, RSS
or descriptors trend above noise after the warm-up, or anything (TURN
allocations, signaling clients, rooms) is still held in the last sample.
A trend is the least-squares slope times the post-warm-up span; noise is
three standard deviations of the residuals, plus 2 MiB of RSS or 4
descriptors.
"""
import csv
import statistics
import sys


def fit(xs, ys):
    """Least-squares slope and the residuals' standard deviation."""
    if len(xs) < 3:
        return 0.0, 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    residuals = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys)]
    return slope, statistics.pstdev(residuals)


def svg(rows, path):
    """One panel per series, time on x, in plain SVG."""
    series = [
        ("rss_kib", "RSS (MiB)", 1 / 1024),
        ("fds", "open descriptors", 1),
        ("threads", "threads", 1),
        ("turn_allocations", "TURN allocations", 1),
        ("signaling_clients", "signaling clients", 1),
        ("fleet_rounds", "fleet rounds (total)", 1),
    ]
    width, panel, margin = 720, 120, 50
    t = [float(r["t_s"]) for r in rows]
    tmax = max(t[-1], 1.0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{len(series) * (panel + 30) + 20}" font-family="sans-serif" font-size="11">'
    ]
    for i, (key, title, scale) in enumerate(series):
        top = 20 + i * (panel + 30)
        ys = [float(r[key]) * scale for r in rows]
        lo, hi = min(ys), max(ys)
        if hi == lo:
            hi = lo + 1
        pts = " ".join(
            f"{margin + (x / tmax) * (width - margin - 10):.1f},"
            f"{top + panel - (y - lo) / (hi - lo) * panel:.1f}"
            for x, y in zip(t, ys)
        )
        out.append(f'<text x="{margin}" y="{top - 5}">{title}: {lo:.1f} to {hi:.1f}</text>')
        out.append(
            f'<rect x="{margin}" y="{top}" width="{width - margin - 10}" height="{panel}" '
            'fill="none" stroke="#ccc"/>'
        )
        out.append(f'<polyline points="{pts}" fill="none" stroke="#1f6fb2" stroke-width="1.5"/>')
    out.append(
        f'<text x="{margin}" y="{len(series) * (panel + 30) + 10}">time: 0 to {tmax:.0f} s</text>'
    )
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    csv_path, svg_path, warmup_pct, fleet_status = sys.argv[1:5]
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if len(rows) < 2:
        sys.exit("soak: too few samples")
    svg(rows, svg_path)
    during, last = rows[:-1], rows[-1]
    t_end = float(during[-1]["t_s"])
    steady = [r for r in during if float(r["t_s"]) >= t_end * float(warmup_pct) / 100]
    problems = []
    for key, unit, floor in [("rss_kib", "KiB", 2048), ("fds", "descriptors", 4)]:
        xs = [float(r["t_s"]) for r in steady]
        ys = [float(r[key]) for r in steady]
        slope, noise = fit(xs, ys)
        growth = slope * (xs[-1] - xs[0]) if xs else 0.0
        limit = 3 * noise + floor
        print(
            f"soak: {key} after warm-up: {min(ys):.0f} to {max(ys):.0f} {unit}, "
            f"fitted growth {growth:+.0f} (limit {limit:.0f})"
        )
        if growth > limit:
            problems.append(f"{key} grows {growth:.0f} {unit} after warm-up (limit {limit:.0f})")
    cpu = float(last["cpu_s"])
    print(
        f"soak: {t_end:.0f} s, {last['fleet_rounds']} rounds, {last['fleet_failures']} failures, "
        f"serve CPU {cpu:.1f} s ({100 * cpu / max(t_end, 1):.1f}% of one core), "
        f"peak RSS {max(float(r['rss_kib']) for r in rows) / 1024:.1f} MiB"
    )
    if int(fleet_status) != 0 or int(last["fleet_failures"]) > 0:
        problems.append(f"the fleet failed {last['fleet_failures']} rounds (exit {fleet_status})")
    if int(last["serve_errors"]) > 0:
        problems.append(f"serve logged {last['serve_errors']} errors")
    for key in ["turn_allocations", "signaling_clients", "rooms"]:
        if float(last[key]) != 0:
            problems.append(f"{key} still {last[key]} at the end")
    for p in problems:
        print(f"soak: FAIL: {p}")
    print(f"soak: plot in {svg_path}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
