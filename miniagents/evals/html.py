"""The HTML report: one self-contained page, with plots, of a run or of a comparison.

The page holds everything it shows: its style and its plots (inline SVG) are in it, and it
loads nothing (no script, no font, no image from anywhere), so it opens from a file, an
e-mail or a CI artifact, offline. :func:`write_html` writes it; :func:`report_html` and
:func:`comparison_html` give its text.

A run's page: the headline, each evaluator's mean score (a bar chart) and pass rate, the
distributions of duration, time to the first token and cost (histograms), then every run
of a case (its scores, output, error, time and cost; its reply tree when kept).

A comparison's page: the change of each evaluator's score with its confidence interval (a
forest plot: a dot per evaluator, its interval as a line, 0 marked), the two runs'
distributions of duration and cost overlaid, then the cases that changed, the regressions
first, with both outputs, and the others.

A page shows at most ``max_text`` characters (600 by default) of each output, error
message, score reason, case name, metadata key and value, and name of a run, its agent,
its dataset or an evaluator: past it, the text is cut and
ends with how many characters were cut (``… [4,999,400 more characters]``), so that a case
whose output is 50 MB makes a page a browser opens. A reply tree shows at most its first
``max_text`` steps (a line each, cut as the texts are), then how many more it has
(``… [99,400 more nodes]``). The report itself (its JSON) keeps them whole.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
from collections.abc import Sequence
from pathlib import Path

from miniagents.arguments import check_count
from miniagents.evals._stats import percentile
from miniagents.evals.case import Score
from miniagents.evals.compare import Change, Comparison
from miniagents.evals.errors import EvalArgumentError
from miniagents.evals.report import CaseResult, EvalReport, _seconds, _written
from miniagents.evals.tree import AgentStep, Step, _line

__all__ = ["MAX_TEXT", "comparison_html", "report_html", "write_html"]

MAX_TEXT = 600
"""The most characters of each text (an output, an error message, a score reason, a case's
name, a metadata key or value) and the most steps of each reply tree a page shows (default)."""

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #1f2328; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.headline { color: #57606a; margin-bottom: 16px; }
.warning { color: #9a6700; font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #d0d7de; padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; } .fail { color: #cf222e; } .error { color: #9a6700; }
.regressed td:first-child { border-left: 4px solid #cf222e; }
.improved td:first-child { border-left: 4px solid #1a7f37; }
.output { max-width: 420px; white-space: pre-wrap; word-break: break-word; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; } figcaption { color: #57606a; font-size: 12px; }
svg text { font: 11px system-ui, sans-serif; fill: #57606a; }
.bar { fill: #0969da; } .bar.baseline { fill: #8c959f; } .bar.candidate { fill: #0969da; }
.hist.baseline { fill: #8c959f; fill-opacity: 0.6; }
.hist.candidate, .hist.run { fill: #0969da; fill-opacity: 0.6; }
.interval { stroke: #1f2328; stroke-width: 2; } .zero { stroke: #cf222e; stroke-dasharray: 3 3; }
.dot.down { fill: #cf222e; } .dot.up { fill: #1a7f37; } .dot.same { fill: #57606a; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
"""

_WIDTH = 360
_ROW = 22


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# -- charts ------------------------------------------------------------------------------


def _score_bars(id_: str, rows: Sequence[tuple[str, Sequence[tuple[str, float | None]]]]) -> str:
    """Horizontal bars from 0 to 1: a group per evaluator, a bar per run (its class)."""
    label_width = 130
    bars_per = max((len(bars) for _, bars in rows), default=1)
    group = bars_per * 12 + 10
    height = max(len(rows), 1) * group + 24
    parts = [
        f'<svg id="{_e(id_)}" class="chart" width="{_WIDTH + label_width + 50}" '
        f'height="{height}" role="img">'
    ]
    span = _WIDTH
    for row, (name, bars) in enumerate(rows):
        top = row * group + 4
        parts.append(f'<text x="0" y="{top + bars_per * 6 + 4}">{_e(name[:20])}</text>')
        for number, (kind, value) in enumerate(bars):
            y = top + number * 12
            width = 0.0 if value is None else span * value
            shown = "-" if value is None else f"{value:.2f}"
            parts.append(
                f'<rect class="bar {_e(kind)}" data-evaluator="{_e(name)}" '
                f'data-value="{shown}" x="{label_width}" y="{y}" width="{width:.1f}" '
                f'height="10"><title>{_e(name)} ({_e(kind)}): {shown}</title></rect>'
            )
            parts.append(f'<text x="{label_width + width + 4:.1f}" y="{y + 9}">{shown}</text>')
    axis = len(rows) * group + 8
    for tick in (0, 0.5, 1):
        x = label_width + span * tick
        parts.append(f'<text x="{x - 6:.1f}" y="{axis + 12}">{tick:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram(
    id_: str, series: Sequence[tuple[str, Sequence[float]]], unit: str, digits: int
) -> str:
    """Histograms of one figure, overlaid (a series per run), on the same bins."""
    values = [value for _, numbers in series for value in numbers]
    height, bottom = 120, 20
    parts = [
        f'<svg id="{_e(id_)}" class="chart" width="{_WIDTH + 20}" height="{height + bottom + 4}" '
        'role="img">'
    ]
    if not values:
        parts.append(f'<text x="10" y="20">no {_e(unit)} measured</text></svg>')
        return "".join(parts)
    low, high = min(values), max(values)
    count = max(1, min(20, math.ceil(math.sqrt(len(values)))))
    spread = (high - low) or 1.0
    width = _WIDTH / count
    tallest = 1
    binned: list[tuple[str, list[int]]] = []
    for kind, numbers in series:
        bins = [0] * count
        for value in numbers:
            index = min(count - 1, int((value - low) / spread * count)) if high > low else 0
            bins[index] += 1
        tallest = max(tallest, *bins)
        binned.append((kind, bins))
    for kind, bins in binned:
        for index, number in enumerate(bins):
            if not number:
                continue
            bar = height * number / tallest
            start = low + spread * index / count
            parts.append(
                f'<rect class="hist {_e(kind)}" data-count="{number}" '
                f'x="{10 + index * width:.1f}" y="{height - bar:.1f}" width="{width - 1:.1f}" '
                f'height="{bar:.1f}"><title>{_e(kind)}: {number} from {start:.{digits}f} '
                f"{_e(unit)}</title></rect>"
            )
    parts.append(f'<text x="10" y="{height + 14}">{low:.{digits}f} {_e(unit)}</text>')
    parts.append(f'<text x="{_WIDTH - 70}" y="{height + 14}">{high:.{digits}f} {_e(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _forest(id_: str, changes: Sequence[tuple[str, Change]]) -> str:
    """A dot per change (its delta) with its interval as a line; 0 marked; from -1 to 1."""
    label_width = 130
    height = max(len(changes), 1) * _ROW + 24
    parts = [
        f'<svg id="{_e(id_)}" class="chart" width="{_WIDTH + label_width + 60}" '
        f'height="{height}" role="img">'
    ]

    def x(value: float) -> float:
        return label_width + (max(-1.0, min(1.0, value)) + 1) / 2 * _WIDTH

    zero = x(0)
    parts.append(f'<line class="zero" x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height - 18}"/>')
    for row, (name, change) in enumerate(changes):
        y = row * _ROW + 12
        parts.append(f'<text x="0" y="{y + 4}">{_e(name[:20])}</text>')
        if change.delta is None:
            parts.append(f'<text x="{zero + 4:.1f}" y="{y + 4}">-</text>')
            continue
        if change.low is not None and change.high is not None:
            parts.append(
                f'<line class="interval" data-evaluator="{_e(name)}" x1="{x(change.low):.1f}" '
                f'y1="{y}" x2="{x(change.high):.1f}" y2="{y}"/>'
            )
        kind = "down" if change.down else "up" if change.up else "same"
        parts.append(
            f'<circle class="dot {kind}" data-evaluator="{_e(name)}" '
            f'data-delta="{change.delta:+.3f}" cx="{x(change.delta):.1f}" cy="{y}" r="5">'
            f"<title>{_e(name)}: {change.delta:+.3f}</title></circle>"
        )
        parts.append(f'<text x="{label_width + _WIDTH + 8}" y="{y + 4}">{change.delta:+.2f}</text>')
    axis = len(changes) * _ROW + 8
    for tick in (-1, 0, 1):
        parts.append(f'<text x="{x(tick) - 6:.1f}" y="{axis + 12}">{tick:+g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _figure(chart: str, caption: str) -> str:
    return f"<figure>{chart}<figcaption>{_e(caption)}</figcaption></figure>"


# -- tables ------------------------------------------------------------------------------


def _score_cell(score: Score | None, max_text: int) -> str:
    if score is None:
        return "<td>-</td>"
    reason = _short(score.reason or "", max_text)
    if score.error is not None:
        error = _short(score.error, max_text)
        return f'<td class="error" title="{_e(reason)}">! {_e(error)}</td>'
    kind = "pass" if score.passed else "fail"
    mark = "✓" if score.passed else "✗"
    title = f' title="{_e(reason)}"' if reason else ""
    return f'<td class="{kind} num"{title}>{mark} {score.value:.2f}</td>'


def _usd(value: float) -> str:
    return f"${value:.6f}"


def _runs_table(report: EvalReport, max_text: int) -> str:
    head = "".join(f"<th>{_e(_short(name, max_text))}</th>" for name in report.evaluators)
    rows = [
        f'<table id="cases"><thead><tr><th>case</th><th>#</th>{head}<th>output</th>'
        "<th>duration</th><th>first token</th><th>tokens</th><th>cost</th></tr></thead><tbody>"
    ]
    for result in report.results:
        rows.append(_run_row(report, result, max_text))
    rows.append("</tbody></table>")
    return "".join(rows)


def _run_row(report: EvalReport, result: CaseResult, max_text: int) -> str:
    if result.error is not None:
        cells = f'<td class="error" colspan="{max(len(report.evaluators), 1)}">error: ' + (
            f"{_e(_short(result.error, max_text))}</td>"
        )
        if not report.evaluators:
            cells = ""
        message = _short(result.error_message or result.error, max_text)
        shown = f'<td class="output error">{_e(message)}</td>'
    else:
        cells = "".join(
            _score_cell(result.scores.get(name), max_text) for name in report.evaluators
        )
        shown = f'<td class="output">{_e(_short(result.output or "", max_text))}'
        if result.tree is not None and result.tree.root is not None:
            tree = _e(_tree_lines(result.tree.root, max_text))
            shown += f"<details><summary>reply tree</summary><pre>{tree}</pre></details>"
        shown += "</td>"
    kind = "passed" if result.passed else "failed"
    case = _e(_short(result.case, max_text))
    return (
        f'<tr class="run {kind}" data-case="{case}"><td>{case}</td>'
        f'<td class="num">{result.repetition}</td>{cells}{shown}'
        f'<td class="num">{_seconds(result.duration)}</td>'
        f'<td class="num">{_seconds(result.first_token)}</td>'
        f'<td class="num">{result.usage.total_tokens:,}</td>'
        f'<td class="num">{_usd(result.usage.cost_usd)}</td></tr>'
    )


def _tree_lines(root: AgentStep, limit: int) -> str:
    """The tree's first ``limit`` steps as ``ReplyTree.render`` draws them, then how many more.

    Each line is cut at ``limit`` characters, as the page's other texts are.
    """
    lines: list[str] = []
    more = 0
    stack: list[tuple[Step, int]] = [(root, 0)]
    while stack:
        step, depth = stack.pop()
        if len(lines) < limit:
            lines.append(_short("  " * depth + _line(step), limit))
        else:
            more += 1
        stack.extend((child, depth + 1) for child in reversed(step.children))
    if more:
        lines.append(f"… [{more:,} more nodes]")
    return "\n".join(lines)


def _labelled(report: EvalReport, max_text: int) -> EvalReport:
    """``report`` with its name, agent and dataset cut as the page's texts are (to show)."""
    return dataclasses.replace(
        report,
        name=_short(report.name, max_text),
        agent=_short(report.agent, max_text),
        dataset=_short(report.dataset, max_text),
    )


def _short(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how many more it has."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def _summary_table(report: EvalReport, max_text: int) -> str:
    rows = [
        '<table id="summary"><thead><tr><th>evaluator</th><th>mean</th><th>passed</th>'
        "<th>errors</th></tr></thead><tbody>"
    ]
    for evaluator, summary in report.summaries().items():
        shown = "-" if summary.mean is None else f"{summary.mean:.2f}"
        name = _short(evaluator, max_text)
        rows.append(
            f'<tr data-evaluator="{_e(name)}"><td>{_e(name)}</td><td class="num">{shown}</td>'
            f'<td class="num">{summary.passed}/{summary.scored}</td>'
            f'<td class="num">{summary.errors}</td></tr>'
        )
    durations = report.durations()
    usage = report.usage
    rows.append(
        "</tbody></table><p>"
        f"duration p50 {_seconds(percentile(durations, 50))}, "
        f"p95 {_seconds(percentile(durations, 95))}; "
        f"{usage.total_tokens:,} tokens, {_usd(usage.cost_usd)} "
        f"(judges: {_usd(report.evaluation_usage.cost_usd)})</p>"
    )
    return "".join(rows)


def _metadata(report: EvalReport, max_text: int) -> str:
    if not report.metadata:
        return ""
    items = "".join(
        f"<tr><th>{_e(_short(str(key), max_text))}</th>"
        f"<td>{_e(_short(str(value), max_text))}</td></tr>"
        for key, value in report.metadata.items()
    )
    return f'<table class="metadata">{items}</table>'


# -- pages -------------------------------------------------------------------------------


def report_html(report: EvalReport, *, max_text: int = MAX_TEXT) -> str:
    """The page of one run (see the module docstring).

    Args:
        report: The run.
        max_text: The most characters of each text the page shows (outputs, error
            messages, score reasons, case names, metadata, the names of the run, its agent,
            its dataset and its evaluators; past it, they are cut, with how many
            characters were cut), and the most steps of each reply tree.

    Raises:
        EvalArgumentError: for a ``max_text`` that is not a whole number of at least 1.
    """
    _check(max_text, "report_html()")
    shown = _labelled(report, max_text)
    bars = [(_short(name, max_text), [("run", report.mean(name))]) for name in report.evaluators]
    charts = [
        _figure(_score_bars("scores", bars), "mean score per evaluator (0 to 1)"),
        _figure(
            _histogram("durations", [("run", report.durations())], "s", 3),
            "duration of a case (to its last token)",
        ),
        _figure(
            _histogram("first-tokens", [("run", report.first_tokens())], "s", 3),
            "time to the first token",
        ),
        _figure(_histogram("costs", [("run", report.costs())], "$", 6), "cost of a case"),
    ]
    body = [
        f"<h1>{_e(shown.name)}: {_e(shown.agent)} on {_e(shown.dataset)}</h1>",
        f'<div class="headline">{_e(shown.headline())} · started {_e(report.started)}, '
        f"took {report.duration:.1f} s</div>",
        _metadata(report, max_text),
        "<h2>Scores</h2>",
        _summary_table(report, max_text),
        f'<div class="charts">{"".join(charts)}</div>',
        "<h2>Cases</h2>",
        _runs_table(report, max_text),
    ]
    return _page(f"{shown.name}: {shown.dataset}", body)


def _comparison_charts(comparison: Comparison, max_text: int) -> list[str]:
    """The charts of a comparison: its changes, its scores, its durations and its costs."""
    baseline, candidate = comparison.baseline, comparison.candidate
    changes = [(_short(name, max_text), change) for name, change in comparison.scores.items()]
    means = [
        (name, [("baseline", change.baseline), ("candidate", change.candidate)])
        for name, change in changes
    ]
    return [
        _figure(
            _forest("changes", changes),
            "change of the mean score, with its 95% confidence interval",
        ),
        _figure(_score_bars("scores", means), "mean score: baseline (grey), candidate (blue)"),
        _figure(
            _histogram(
                "durations",
                [("baseline", baseline.durations()), ("candidate", candidate.durations())],
                "s",
                3,
            ),
            "duration of a case: baseline (grey), candidate (blue)",
        ),
        _figure(
            _histogram(
                "costs", [("baseline", baseline.costs()), ("candidate", candidate.costs())], "$", 6
            ),
            "cost of a case: baseline (grey), candidate (blue)",
        ),
    ]


def comparison_html(comparison: Comparison, *, max_text: int = MAX_TEXT) -> str:
    """The page of a comparison (see the module docstring).

    Args:
        comparison: The comparison of two runs.
        max_text: The most characters of each output, error message, case name and name
            of a run, its agent, its dataset or an evaluator the page shows (past it, they
            are cut, with how many characters were cut).

    Raises:
        EvalArgumentError: for a ``max_text`` that is not a whole number of at least 1.
    """
    _check(max_text, "comparison_html()")
    named_baseline = _labelled(comparison.baseline, max_text)
    named_candidate = _labelled(comparison.candidate, max_text)
    shown = dataclasses.replace(comparison, baseline=named_baseline, candidate=named_candidate)
    charts = _comparison_charts(comparison, max_text)
    figures = [
        '<table id="figures"><thead><tr><th></th><th>baseline</th><th>candidate</th>'
        "<th>change</th><th>95% CI</th></tr></thead><tbody>"
    ]
    rows = [
        *comparison.scores.items(),
        ("duration (s)", comparison.duration),
        ("first token (s)", comparison.first_token),
        ("cost ($/case)", comparison.cost),
    ]
    for figure, change in rows:
        name = _short(figure, max_text)
        figures.append(
            f'<tr data-figure="{_e(name)}"><td>{_e(name)}</td>{_change_cells(change)}</tr>'
        )
    figures.append("</tbody></table>")
    changed = [case for case in comparison.cases if case.status in ("regressed", "improved")]
    listed = [
        '<table id="changed"><thead><tr><th>case</th><th>status</th><th>what changed</th>'
        "<th>baseline output</th><th>candidate output</th></tr></thead><tbody>"
    ]
    for case in changed:
        before = case.baseline[0] if case.baseline else None
        after = case.candidate[0] if case.candidate else None
        name = _e(_short(case.case, max_text))
        listed.append(
            f'<tr class="{case.status}" data-case="{name}"><td>{name}</td>'
            f"<td>{case.status}</td><td>{_e(_short(case.what_changed(), max_text))}</td>"
            f'<td class="output">{_e(_shown(before, max_text))}</td>'
            f'<td class="output">{_e(_shown(after, max_text))}</td></tr>'
        )
    listed.append("</tbody></table>")
    others = [
        '<table id="others"><thead><tr><th>case</th><th>status</th></tr></thead><tbody>',
        *(
            f'<tr class="{case.status}" data-case="{_e(_short(case.case, max_text))}">'
            f"<td>{_e(_short(case.case, max_text))}</td><td>{case.status}</td></tr>"
            for case in comparison.cases
            if case.status not in ("regressed", "improved")
        ),
        "</tbody></table>",
    ]
    body = [
        f"<h1>{_e(named_baseline.name)} → {_e(named_candidate.name)} on "
        f"{_e(named_candidate.dataset)}</h1>",
        f'<div class="headline">{_e(shown.headline())}</div>',
        *(
            f'<p class="warning">warning: {_e(_short(warning, max_text))}</p>'
            for warning in comparison.warnings
        ),
        "<h2>Figures</h2>",
        "".join(figures),
        f'<div class="charts">{"".join(charts)}</div>',
        f"<h2>Cases that changed ({len(changed)})</h2>",
        "".join(listed),
        "<h2>The other cases</h2>",
        "".join(others),
    ]
    title = f"{named_baseline.name} → {named_candidate.name}: {named_candidate.dataset}"
    return _page(title, body)


def _shown(result: CaseResult | None, max_text: int) -> str:
    if result is None:
        return "-"
    if result.error is not None:
        error = _short(result.error, max_text)
        return f"error: {error}: {_short(result.error_message or '', max_text)}"
    return _short(result.output or "", max_text)


def _change_cells(change: Change) -> str:
    def plain(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    delta = "-" if change.delta is None else f"{change.delta:+.4g}"
    interval = (
        "-"
        if change.low is None or change.high is None
        else f"[{change.low:+.3g}, {change.high:+.3g}]"
    )
    kind = "fail" if change.down else "pass" if change.up else ""
    return (
        f'<td class="num">{plain(change.baseline)}</td>'
        f'<td class="num">{plain(change.candidate)}</td>'
        f'<td class="num {kind}">{delta}</td><td class="num">{interval}</td>'
    )


def write_html(
    report: EvalReport | Comparison, path: str | os.PathLike[str], *, max_text: int = MAX_TEXT
) -> Path:
    """Write the page of a run or of a comparison to ``path``; return the path.

    Args:
        report: The run, or the comparison.
        path: The file to write.
        max_text: The most characters of each text the page shows (outputs, error
            messages, score reasons, case names, metadata; past it, they are cut, with how
            many characters were cut), and the most steps of each reply tree.

    Raises:
        EvalArgumentError: for a ``max_text`` that is not a whole number of at least 1, or a
            ``path`` that is no path, or a folder.
    """
    _check(max_text, "write_html()")
    if isinstance(report, Comparison):
        page = comparison_html(report, max_text=max_text)
    else:
        page = report_html(report, max_text=max_text)
    return _written(path, page, "write_html()", "report.html")


def _check(max_text: object, owner: str) -> None:
    check_count(max_text, "max_text", owner=owner, error=EvalArgumentError)
