"""Inline SVG charts: RTO and RPO against targets, a drill's phase timeline, trend lines.

Plain SVG markup, no scripts and no external resources, so the report stays one file that
opens offline and prints. Every chart carries a ``<title>`` for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from harness.drill.run import Phase
from harness.report.labels import Labels
from harness.report.model import Measure, duration

GOOD = "#1a7f37"
FAIL = "#cf222e"
MUTED = "#6e7781"
GRID = "#d0d7de"
INK = "#1f2328"
PHASE_COLOURS = {
    "seed": "#8c959f",
    "backup": "#0969da",
    "disaster": "#cf222e",
    "detect": "#bf8700",
    "restore": "#8250df",
    "verify": "#1a7f37",
}
_TICKS = (0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 4 * 3600.0, 86400.0, 7 * 86400.0)


@dataclass(frozen=True)
class ChartRow:
    """One drill in the targets chart."""

    label: str
    rto: Measure
    rpo: Measure
    anchor: str = ""


def _text(
    x: float, y: float, body: str, *, size: int = 12, anchor: str = "start", **attrs: str
) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
        f"{extra}>{escape(body)}</text>"
    )


def _svg(width: float, height: float, title: str, body: Sequence[str], css_class: str) -> str:
    return (
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="system-ui, -apple-system, Segoe UI, Noto Sans, Noto Sans CJK JP, '
        f'sans-serif" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, width: float = 1) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
        f'stroke="{colour}" stroke-width="{width:g}"/>'
    )


def _tick(seconds: float, labels: Labels) -> str:
    """Axis labels without needless decimals: ``1 s``, ``10 s``, ``1 min``, ``4 h``."""
    if seconds < 60:
        return f"{seconds:.3g} {labels('unit_s')}"
    return duration(seconds, labels)


def _nice_step(rough: float) -> float:
    """The step of 1, 2 or 5 times a power of ten nearest above ``rough``."""
    if rough <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(rough))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= rough)


class _LogScale:
    """Seconds to x on a log axis from ``low`` to ``high`` across ``[x0, x1]``."""

    def __init__(self, low: float, high: float, x0: float, x1: float) -> None:
        self.low, self.high = math.log10(low), math.log10(high)
        self.x0, self.x1 = x0, x1

    def __call__(self, seconds: float) -> float:
        value = math.log10(max(seconds, 10**self.low))
        share = (value - self.low) / (self.high - self.low)
        return self.x0 + min(1.0, max(0.0, share)) * (self.x1 - self.x0)


def targets_chart(rows: Sequence[ChartRow], labels: Labels) -> str:
    """Horizontal bars of measured RTO and RPO per drill, each against its target line.

    A log axis, because measurements of seconds meet targets of hours; a bar is green within
    its target and red beyond it (or unbounded, or not measured).
    """
    label_w, panel_w, gap, row_h, top = 300.0, 330.0, 40.0, 24.0, 44.0
    width = label_w + 2 * panel_w + gap + 20
    height = top + row_h * max(1, len(rows)) + 34
    values = [m.target for r in rows for m in (r.rto, r.rpo)]
    values += [m.measured for r in rows for m in (r.rto, r.rpo) if m.measured]
    low = min([1.0, *[v for v in values if v > 0]]) / 2
    high = max([60.0, *values]) * 2
    body: list[str] = []
    for index, (metric, pick) in enumerate((("RTO", "rto"), ("RPO", "rpo"))):
        x0 = label_w + index * (panel_w + gap)
        scale = _LogScale(low, high, x0, x0 + panel_w)
        body.append(_text(x0, 18, metric, size=14, font_weight="600", fill=INK))
        labelled = -1e9  # x of the last tick label: labels closer than 40 px would overlap
        for tick in _TICKS:
            if low <= tick <= high:
                x = scale(tick)
                body.append(_line(x, top - 6, x, height - 30, GRID))
                if x - labelled >= 40:
                    text = _tick(tick, labels)
                    body.append(_text(x, height - 16, text, size=10, anchor="middle", fill=MUTED))
                    labelled = x
        for i, row in enumerate(rows):
            measure: Measure = getattr(row, pick)
            y = top + i * row_h
            colour = GOOD if measure.ok else FAIL
            if measure.unbounded:
                end = x0 + panel_w
            elif measure.measured is None:
                end = x0
            else:
                end = scale(measure.measured)
            body.append(
                f'<rect x="{x0:.1f}" y="{y + 4:.1f}" width="{max(end - x0, 1.5):.1f}" '
                f'height="{row_h - 10:.1f}" rx="2" fill="{colour}" opacity="0.85"/>'
            )
            target_x = scale(measure.target)
            body.append(
                f'<line x1="{target_x:.1f}" y1="{y + 1:.1f}" x2="{target_x:.1f}" '
                f'y2="{y + row_h - 3:.1f}" stroke="{INK}" stroke-width="2"/>'
            )
            value = duration(measure.measured, labels, unbounded=measure.unbounded)
            share = measure.share
            note = value
            if share is not None:
                note += f" ({share:.0%})" if share >= 0.01 else " (<1%)"
            inside = end > target_x - 4 or end > x0 + panel_w - 90
            body.append(
                _text(
                    (end - 4) if inside else (end + 4),
                    y + row_h / 2 + 4,
                    note,
                    size=11,
                    anchor="end" if inside else "start",
                    fill="#ffffff" if inside else INK,
                )
            )
        target_values = {getattr(r, pick).target for r in rows}
        if len(target_values) == 1:
            target = target_values.pop()
            body.append(
                _text(
                    scale(target),
                    34,
                    f"{labels('chart_target')} {duration(target, labels)}",
                    size=11,
                    anchor="middle",
                    fill=INK,
                )
            )
    for i, row in enumerate(rows):
        y = top + i * row_h + row_h / 2 + 4
        label = row.label if len(row.label) <= 44 else row.label[:43] + "…"
        text = _text(label_w - 10, y, label, size=12, anchor="end", fill=INK)
        body.append(f'<a href="#{escape(row.anchor)}">{text}</a>' if row.anchor else text)
    return _svg(width, height, labels("chart_title"), body, "chart targets-chart")


def timeline(phases: Sequence[Phase], rto: Measure, labels: Labels) -> str:
    """A Gantt chart of the drill's phases, with the RTO window drawn under them."""
    if not phases:
        return ""
    starts = [datetime.fromisoformat(p.started_at) for p in phases]
    origin = min(starts)
    offsets = [(s - origin).total_seconds() for s in starts]
    ends = [o + p.seconds for o, p in zip(offsets, phases, strict=True)]
    disaster_end = next(
        (e for e, p in zip(ends, phases, strict=True) if p.name == "disaster"), None
    )
    rto_end = None
    if disaster_end is not None and rto.measured is not None:
        rto_end = disaster_end + rto.measured
    total = max([*ends, rto_end or 0.0, 0.001])
    label_w, chart_w, row_h, top = 90.0, 640.0, 20.0, 8.0
    rows = len(phases) + (1 if rto_end is not None else 0)
    height = top + rows * row_h + 30
    width = label_w + chart_w + 110

    def x(seconds: float) -> float:
        return label_w + seconds / total * chart_w

    body: list[str] = []
    step = _nice_step(total / 5)
    at = 0.0
    while at <= total + 1e-9:
        body.append(_line(x(at), top, x(at), height - 24, GRID))
        body.append(
            _text(x(at), height - 10, _tick(at, labels), size=10, anchor="middle", fill=MUTED)
        )
        at += step
    for i, (phase, offset) in enumerate(zip(phases, offsets, strict=True)):
        y = top + i * row_h
        colour = PHASE_COLOURS.get(phase.name, "#57606a")
        body.append(_text(label_w - 8, y + 14, phase.name, size=12, anchor="end", fill=INK))
        bar = max(x(offset + phase.seconds) - x(offset), 2)
        body.append(
            f'<rect x="{x(offset):.1f}" y="{y + 3:.1f}" width="{bar:.1f}" '
            f'height="{row_h - 6:.1f}" rx="2" fill="{colour}"><title>{escape(phase.name)}: '
            f"{escape(duration(phase.seconds, labels))} {escape(phase.detail)}</title></rect>"
        )
        body.append(
            _text(
                x(offset + phase.seconds) + 4,
                y + 14,
                duration(phase.seconds, labels),
                size=11,
                fill=INK,
            )
        )
    if rto_end is not None and disaster_end is not None:
        y = top + len(phases) * row_h + row_h / 2
        colour = GOOD if rto.ok else FAIL
        x0, x1 = x(disaster_end), x(rto_end)
        body.append(
            _text(
                label_w - 8,
                y + 4,
                labels("rto_window"),
                size=12,
                anchor="end",
                fill=colour,
                font_weight="600",
            )
        )
        body.append(_line(x0, y, x1, y, colour, 3))
        body.append(_line(x0, y - 6, x0, y + 6, colour, 2))
        body.append(_line(x1, y - 6, x1, y + 6, colour, 2))
        body.append(_text(x1 + 4, y + 4, duration(rto.measured, labels), size=11, fill=colour))
    return _svg(width, height, labels("timeline"), body, "chart timeline")


def sparkline(values: Sequence[float | None], *, target: float | None, title: str) -> str:
    """A small line of ``values`` (oldest first), the last point marked, red beyond ``target``."""
    width, height, pad = 140.0, 28.0, 4.0
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low or max(high, 1e-9)
    step = (width - 2 * pad) / max(1, len(values) - 1)
    points = []
    for i, value in enumerate(values):
        if value is None:
            continue
        px = pad + i * step if len(values) > 1 else width / 2
        py = height - pad - (value - low) / span * (height - 2 * pad) if high != low else height / 2
        points.append((px, py, value))
    last = points[-1]
    colour = FAIL if target is not None and last[2] > target else GOOD
    body = []
    if len(points) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{MUTED}" stroke-width="1.5"/>')
    body.append(f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="3" fill="{colour}"/>')
    return _svg(width, height, title, body, "chart sparkline")
