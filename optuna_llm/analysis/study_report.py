"""Figures of finished studies: the slides' plots, Optuna's own plots, and study comparisons.

For each study, as PNG (matplotlib) and interactive HTML (plotly):

* ``score_evolution``: every trial's value over trial numbers, coloured by ``source`` (who
  chose the trial), with the best-so-far line (the slides' "score evolution");
* ``score_by_param``: the value against each hyperparameter (the slides' "score by variables");
* ``params_over_iterations``: each hyperparameter against the trial number (the slides'
  "hyperparameters over iterations");
* ``history``, ``importances``, ``slice``: ``optuna.visualization`` (HTML) and
  ``optuna.visualization.matplotlib`` (PNG);

and with several studies a side-by-side ``comparison`` (one panel per study on a shared value
axis, plus their best-so-far curves overlaid). ``index.html`` links everything and
``summary.json`` holds each study's best trial, trial counts and trials per ``source``.
Multi-objective studies are plotted on their first objective.

Every colour in every figure has a legend entry (or a colour bar), and the HTML pages of a
report folder share one copy of plotly's script.

Example:
    >>> import tempfile
    >>> import optuna
    >>> from optuna_llm.analysis.study_report import write_report
    >>> storage = optuna.storages.InMemoryStorage()
    >>> study = optuna.create_study(storage=storage, study_name="demo")
    >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=4)
    >>> paths = write_report(storage, ["demo"], tempfile.mkdtemp(), formats=["png"])
    >>> sorted(p.name for p in paths)[:2]
    ['demo_history.png', 'demo_importances.png']
"""

from __future__ import annotations

import html
import json
import math
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

STUDY_FIGURES = (
    "score_evolution",
    "score_by_param",
    "params_over_iterations",
    "history",
    "importances",
    "slice",
)
"""Figures written for each study (each as ``<study>_<figure>.png`` and ``.html``)."""

NO_SOURCE = "(no source)"

_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)  # matplotlib's tab10, so a source has one colour in PNG and HTML alike
_ORDER_COLOUR = "#b3b3b3"  # the grey line joining a parameter's values in trial order
PLOTLY_JS = "plotly.min.js"
"""The one copy of plotly's script in a report folder, shared by every HTML page there."""


@dataclass
class StudyData:
    """The completed trials of one study, in trial order, on its first objective."""

    name: str
    study: optuna.Study
    trials: list[FrozenTrial]
    minimize: bool
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)

    @property
    def numbers(self) -> np.ndarray:
        return np.array([t.number for t in self.trials])

    @property
    def values(self) -> np.ndarray:
        return np.array([t.values[0] for t in self.trials], dtype=float)

    @property
    def best_so_far(self) -> np.ndarray:
        acc = np.minimum.accumulate if self.minimize else np.maximum.accumulate
        return acc(self.values) if len(self.trials) else self.values

    @property
    def sources(self) -> list[str]:
        return [str(t.user_attrs.get("source", NO_SOURCE)) for t in self.trials]

    @property
    def value_label(self) -> str:
        names = self.study.metric_names
        return names[0] if names else "objective value"


def load_study_data(study: optuna.Study) -> StudyData:
    """Collect the completed trials and the union of their distributions."""
    trials = sorted(
        (t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
        key=lambda t: t.number,
    )
    distributions: dict[str, BaseDistribution] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            distributions.setdefault(name, dist)
    return StudyData(
        name=study.study_name,
        study=study,
        trials=trials,
        minimize=study.directions[0] == StudyDirection.MINIMIZE,
        distributions=dict(sorted(distributions.items())),
    )


def slug(name: str) -> str:
    """A file-name-safe version of a study name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "study"


def _numeric(dist: BaseDistribution, values: list[Any]) -> tuple[list[float], list[str] | None]:
    """Values as floats for plotting; categorical choices become positions with tick labels."""
    if isinstance(dist, CategoricalDistribution):
        labels = [str(c) for c in dist.choices]
        return [float(dist.to_internal_repr(v)) for v in values], labels
    return [float(v) for v in values], None


def _is_log(dist: BaseDistribution) -> bool:
    return bool(getattr(dist, "log", False))


# --- matplotlib (PNG) -------------------------------------------------------------------------


def _mpl_figure(n_panels: int, *, sharey: bool = False, width: float = 4.0) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    cols = min(n_panels, 4)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(width * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _source_colours(sources: Sequence[str]) -> dict[str, str]:
    """One colour per source (sorted), the same in the PNG and the HTML figures."""
    return {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(sorted(set(sources)))}


def _source_handles(colours: dict[str, str]) -> list[Any]:
    """Legend entries for points coloured by source."""
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], marker="o", linestyle="", color=colour, label=src)
        for src, colour in colours.items()
    ]


def _png_score_evolution(data: StudyData) -> Any:
    fig, (ax,) = _mpl_figure(1, width=7.0)
    sources = data.sources
    for src, colour in _source_colours(sources).items():
        mask = np.array([s == src for s in sources])
        ax.scatter(data.numbers[mask], data.values[mask], s=18, color=colour, label=src)
    ax.step(
        data.numbers, data.best_so_far, where="post", color="black", lw=1.5, label="best so far"
    )
    ax.set_xlabel("trial")
    ax.set_ylabel(data.value_label)
    ax.set_title(f"{data.name}: score evolution")
    ax.legend(fontsize="small", title="source")
    return fig


def _png_params(data: StudyData, *, by_param: bool) -> Any:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    names = list(data.distributions)
    fig, axes = _mpl_figure(max(len(names), 1), sharey=by_param)
    colours = _source_colours(data.sources)
    point_colours = [colours[s] for s in data.sources]
    for ax, name in zip(axes, names, strict=False):  # no parameters: one empty panel
        dist = data.distributions[name]
        rows = [
            (t.number, t.params[name], v)
            for t, v in zip(data.trials, data.values, strict=True)
            if name in t.params
        ]
        xs, labels = _numeric(dist, [r[1] for r in rows])
        cs = [point_colours[i] for i, t in enumerate(data.trials) if name in t.params]
        if by_param:
            ax.scatter(xs, [r[2] for r in rows], s=16, c=cs)
            ax.set_xlabel(name)
            ax.set_ylabel(data.value_label)
            axis = ax.xaxis
            if _is_log(dist):
                ax.set_xscale("log")
        else:
            ax.plot([r[0] for r in rows], xs, color=_ORDER_COLOUR, lw=0.8, zorder=1)
            ax.scatter([r[0] for r in rows], xs, s=16, c=cs, zorder=2)
            ax.set_xlabel("trial")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(name)
            axis = ax.yaxis
            if _is_log(dist):
                ax.set_yscale("log")
        if labels is not None:
            axis.set_ticks(range(len(labels)), labels)
    handles = _source_handles(colours)
    if not by_param:
        handles.append(Line2D([], [], color=_ORDER_COLOUR, lw=0.8, label="in trial order"))
    fig.legend(handles=handles, title="source", loc="outside right upper", fontsize="small")
    title = "score by hyperparameter" if by_param else "hyperparameters over iterations"
    fig.suptitle(f"{data.name}: {title}")
    return fig


def _png_optuna(plot: Callable[..., Any], data: StudyData) -> Any:
    import matplotlib

    # Optuna's matplotlib plots switch the global style to ggplot: keep that inside this block.
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        result = plot(data.study, **_target_kwargs(data))
    fig = np.atleast_1d(result).ravel()[0].figure
    width, height = fig.get_size_inches()
    fig.set_size_inches(max(width, 6.4), max(height, 4.0))
    return fig


def _png_comparison(datas: Sequence[StudyData]) -> Any:
    fig, axes = _mpl_figure(len(datas) + 1, sharey=True)
    for i, (ax, data) in enumerate(zip(axes[:-1], datas, strict=True)):
        colour = _PALETTE[i % len(_PALETTE)]
        ax.scatter(data.numbers, data.values, s=14, color=colour, alpha=0.5, label="trial value")
        ax.step(
            data.numbers,
            data.best_so_far,
            where="post",
            color=colour,
            lw=1.5,
            label="best so far",
        )
        ax.set_title(data.name)
        ax.set_xlabel("trial")
        ax.legend(fontsize="small")
    axes[0].set_ylabel(datas[0].value_label)
    ax = axes[-1]
    for i, data in enumerate(datas):
        ax.step(
            np.arange(len(data.trials)),
            data.best_so_far,
            where="post",
            color=_PALETTE[i % len(_PALETTE)],
            label=data.name,
        )
    ax.set_title("best so far")
    ax.set_xlabel("completed trials")
    ax.legend(fontsize="small")
    return fig


# --- plotly (HTML) ----------------------------------------------------------------------------


def _html_score_evolution(data: StudyData) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    sources = data.sources
    for src, colour in _source_colours(sources).items():
        idx = [i for i, s in enumerate(sources) if s == src]
        fig.add_trace(
            go.Scatter(
                x=data.numbers[idx],
                y=data.values[idx],
                mode="markers",
                name=src,
                marker={"color": colour},
                hovertext=[_hover(data.trials[i]) for i in idx],
            )
        )
    fig.add_trace(
        go.Scatter(
            x=data.numbers,
            y=data.best_so_far,
            mode="lines",
            name="best so far",
            line={"shape": "hv", "color": "black"},
        )
    )
    fig.update_layout(
        title=f"{data.name}: score evolution",
        xaxis_title="trial",
        yaxis_title=data.value_label,
        legend_title_text="source",
        showlegend=True,
    )
    return fig


def _hover(trial: FrozenTrial) -> str:
    lines = [f"trial {trial.number}"] + [f"{k}={v}" for k, v in trial.params.items()]
    rationale = trial.user_attrs.get("rationale")
    if rationale:
        lines.append(html.escape(str(rationale))[:200])
    return "<br>".join(lines)


def _html_params(data: StudyData, *, by_param: bool) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(data.distributions) or ["(no parameters)"]
    cols = min(len(names), 4)
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, shared_yaxes=by_param)
    colours = _source_colours(data.sources)
    for i, name in enumerate(data.distributions):
        r, c = divmod(i, cols)
        dist = data.distributions[name]
        rows_ = [
            (t, v, s)
            for t, v, s in zip(data.trials, data.values, data.sources, strict=True)
            if name in t.params
        ]
        xs, labels = _numeric(dist, [t.params[name] for t, _, _ in rows_])
        if not by_param:  # the parameter's path through the trials, behind the points
            fig.add_trace(
                go.Scatter(
                    x=[t.number for t, _, _ in rows_],
                    y=xs,
                    mode="lines",
                    line={"color": _ORDER_COLOUR, "width": 1},
                    name="in trial order",
                    legendgroup="in trial order",
                    showlegend=i == 0,
                    hoverinfo="skip",
                ),
                row=r + 1,
                col=c + 1,
            )
        for src, colour in colours.items():
            idx = [j for j, (_, _, s) in enumerate(rows_) if s == src]
            if not idx:
                continue
            x = [xs[j] for j in idx] if by_param else [rows_[j][0].number for j in idx]
            y = [rows_[j][1] for j in idx] if by_param else [xs[j] for j in idx]
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="markers",
                    marker={"color": colour},
                    name=src,
                    legendgroup=src,
                    showlegend=i == 0,
                    hovertext=[_hover(rows_[j][0]) for j in idx],
                ),
                row=r + 1,
                col=c + 1,
            )
        axis_update: dict[str, Any] = {"type": "log"} if _is_log(dist) else {}
        if labels is not None:
            axis_update = {"tickvals": list(range(len(labels))), "ticktext": labels}
        if by_param:
            fig.update_xaxes(title_text=name, row=r + 1, col=c + 1, **axis_update)
        else:
            fig.update_xaxes(title_text="trial", row=r + 1, col=c + 1)
            fig.update_yaxes(row=r + 1, col=c + 1, **axis_update)
    title = "score by hyperparameter" if by_param else "hyperparameters over iterations"
    fig.update_layout(
        title=f"{data.name}: {title}",
        height=320 * rows,
        legend_title_text="source",
        showlegend=True,
    )
    return fig


def _html_optuna(plot: Callable[..., Any], data: StudyData) -> Any:
    fig = plot(data.study, **_target_kwargs(data))
    # Plotly hides the legend of a figure with one trace (importances): show what the colour is.
    fig.update_layout(showlegend=True)
    return fig


def _html_comparison(datas: Sequence[StudyData]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = [d.name for d in datas] + ["best so far"]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, shared_yaxes=True)
    for i, data in enumerate(datas):
        colour = _PALETTE[i % len(_PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=data.numbers,
                y=data.values,
                mode="markers",
                name=f"{data.name} values",
                marker={"color": colour, "opacity": 0.5},
            ),
            row=1,
            col=i + 1,
        )
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(data.trials)),
                y=data.best_so_far,
                mode="lines",
                name=f"{data.name} best so far",
                line={"shape": "hv", "color": colour},
            ),
            row=1,
            col=len(titles),
        )
    fig.update_layout(title="comparison", width=380 * len(titles), showlegend=True)
    return fig


def _target_kwargs(data: StudyData) -> dict[str, Any]:
    if len(data.study.directions) == 1:
        return {}
    return {"target": lambda t: t.values[0], "target_name": data.value_label}


# --- driver -----------------------------------------------------------------------------------

Figures = dict[str, tuple[Callable[[], Any], Callable[[], Any]]]
"""Figure name -> (build the matplotlib figure, build the plotly figure)."""


def study_figures(data: StudyData) -> Figures:
    """The figures of one study, by name (:data:`STUDY_FIGURES`), each as a pair of builders:
    the matplotlib :class:`~matplotlib.figure.Figure` (PNG) and the plotly figure (HTML)."""
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    return {
        "score_evolution": (
            lambda: _png_score_evolution(data),
            lambda: _html_score_evolution(data),
        ),
        "score_by_param": (
            lambda: _png_params(data, by_param=True),
            lambda: _html_params(data, by_param=True),
        ),
        "params_over_iterations": (
            lambda: _png_params(data, by_param=False),
            lambda: _html_params(data, by_param=False),
        ),
        "history": (
            lambda: _png_optuna(vis_mpl.plot_optimization_history, data),
            lambda: _html_optuna(vis.plot_optimization_history, data),
        ),
        "importances": (
            lambda: _png_optuna(vis_mpl.plot_param_importances, data),
            lambda: _html_optuna(vis.plot_param_importances, data),
        ),
        "slice": (
            lambda: _png_optuna(vis_mpl.plot_slice, data),
            lambda: _html_optuna(vis.plot_slice, data),
        ),
    }


def comparison_figures(datas: Sequence[StudyData]) -> Figures:
    """The side-by-side ``comparison`` of two or more studies, as :func:`study_figures`."""
    return {"comparison": (lambda: _png_comparison(datas), lambda: _html_comparison(datas))}


def _use_agg_backend() -> None:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


def _save_png(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)  # Optuna's plots are pyplot figures; ours are not, and close() ignores them


def write_report(
    storage: str | optuna.storages.BaseStorage,
    study_names: Sequence[str],
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("png", "html"),
) -> list[Path]:
    """Write the figures of ``study_names`` (and a comparison if several) into ``out_dir``.

    Returns the paths written. A figure a study cannot have (importances need two completed
    trials with a varying parameter) is skipped and listed under ``skipped`` in
    ``summary.json``. The HTML pages of one folder share one copy of plotly's script,
    ``plotly.min.js`` (:data:`PLOTLY_JS`), so they work offline; ``index.html`` shows every
    figure on one page and loads that script once.
    """
    if not study_names:
        raise ValueError("Give at least one study name (--study-name NAME).")
    bad = set(formats) - {"png", "html"}
    if bad:
        raise ValueError(f"Unknown format(s) {sorted(bad)}: choose png and/or html.")
    available = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    missing = [n for n in study_names if n not in available]
    if missing:
        raise ValueError(
            f"No study named {', '.join(map(repr, missing))} in this storage. "
            f"Studies there: {', '.join(sorted(available)) or '(none)'}."
        )
    _use_agg_backend()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    datas = [load_study_data(optuna.load_study(study_name=n, storage=storage)) for n in study_names]
    written: list[Path] = []
    sections: list[_Section] = []
    summary: dict[str, Any] = {"studies": {}, "skipped": []}

    def emit(stem: str, make_png: Callable[[], Any], make_html: Callable[[], Any]) -> None:
        section = _Section(stem)
        try:
            if "png" in formats:
                path = out / f"{stem}.png"
                _save_png(make_png(), path)
                written.append(path)
                section.png = path
            if "html" in formats:
                fig = make_html()
                path = out / f"{stem}.html"
                fig.write_html(path, include_plotlyjs=PLOTLY_JS)
                written.append(path)
                section.html = path
                section.div = fig.to_html(full_html=False, include_plotlyjs=False)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            summary["skipped"].append({"figure": stem, "reason": str(exc)})
        sections.append(section)

    for data in datas:
        summary["studies"][data.name] = _summary(data)
        if not data.trials:
            summary["skipped"].append(
                {"figure": f"{slug(data.name)}_*", "reason": "no completed trials"}
            )
            continue
        for figure, (make_png, make_html) in study_figures(data).items():
            emit(f"{slug(data.name)}_{figure}", make_png, make_html)
    compared = [d for d in datas if d.trials]
    if len(compared) >= 2:
        for figure, (make_png, make_html) in comparison_figures(compared).items():
            emit(figure, make_png, make_html)

    if any(s.html for s in sections):
        _write_plotly_js(out / PLOTLY_JS)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    written.append(out / "summary.json")
    (out / "index.html").write_text(_index_html(sections, summary, out))
    written.append(out / "index.html")
    return written


def _write_plotly_js(path: Path) -> None:
    """Plotly's bundled script, written once per folder (and again only if it changed)."""
    from plotly.offline import get_plotlyjs

    script = get_plotlyjs()
    if not path.exists() or path.read_text(encoding="utf-8") != script:
        path.write_text(script, encoding="utf-8")


@dataclass
class _Section:
    """One figure of the report: its files and its plotly ``<div>`` for ``index.html``."""

    stem: str
    png: Path | None = None
    html: Path | None = None
    div: str | None = None


def _summary(data: StudyData) -> dict[str, Any]:
    states = Counter(t.state.name for t in data.study.get_trials(deepcopy=False))
    result: dict[str, Any] = {
        "direction": "minimize" if data.minimize else "maximize",
        "trials": dict(states),
        "sources": dict(Counter(data.sources)),
    }
    if data.trials:
        best_index = int(np.argmin(data.values) if data.minimize else np.argmax(data.values))
        best = data.trials[best_index]
        result["best"] = {"number": best.number, "value": best.values[0], "params": best.params}
    return result


def _index_html(sections: Sequence[_Section], summary: dict[str, Any], out: Path) -> str:
    """One page with every figure: the interactive ones inline (plotly's script loaded once),
    the PNGs otherwise, each with links to its files."""
    esc = html.escape
    head = [
        "<!doctype html><meta charset=utf-8><title>optuna-llm report</title>",
        "<style>body{font-family:sans-serif;max-width:1400px;margin:auto}"
        "td,th{padding:2px 8px;text-align:left}</style>",
    ]
    if any(s.div for s in sections):
        head.append(f'<script charset="utf-8" src="{PLOTLY_JS}"></script>')
    body = ["<h1>optuna-llm report</h1>", "<table><tr><th>study</th><th>trials</th>"]
    body.append("<th>source (completed trials)</th><th>best</th></tr>")
    for name, study in summary["studies"].items():
        best = study.get("best")
        best_text = f"trial {best['number']}: {best['value']:.6g}" if best else "-"
        body.append(
            f"<tr><td>{esc(name)}</td><td>{esc(_counts(study['trials']))}</td>"
            f"<td>{esc(_counts(study['sources']))}</td><td>{esc(best_text)}</td></tr>"
        )
    body.append("</table>")
    for item in summary["skipped"]:
        body.append(f"<p>skipped {esc(item['figure'])}: {esc(item['reason'])}</p>")
    for section in sections:
        files = [p for p in (section.png, section.html) if p is not None]
        if not files:
            continue
        links = " · ".join(
            f'<a href="{esc(p.relative_to(out).as_posix())}">{esc(p.name)}</a>' for p in files
        )
        body.append(f"<h2>{esc(section.stem)}</h2><p>{links}</p>")
        if section.div is not None:
            body.append(section.div)
        elif section.png is not None:
            rel = esc(section.png.relative_to(out).as_posix())
            body.append(f'<img src="{rel}" alt="{esc(section.stem)}" style="max-width:100%">')
    return "\n".join(head + body) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


__all__ = [
    "PLOTLY_JS",
    "STUDY_FIGURES",
    "Figures",
    "StudyData",
    "comparison_figures",
    "load_study_data",
    "study_figures",
    "write_report",
]
