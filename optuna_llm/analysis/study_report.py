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

Example:
    >>> from optuna_llm.analysis.study_report import write_report
    >>> paths = write_report("sqlite:///runs.db", ["branin-tpe", "branin-lhs"], "report/")
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


def _source_colours(sources: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {s: cmap(i % 10) for i, s in enumerate(sorted(set(sources)))}


def _png_score_evolution(data: StudyData, path: Path) -> None:
    fig, (ax,) = _mpl_figure(1, width=7.0)
    sources = data.sources
    colours = _source_colours(sources)
    for src, colour in colours.items():
        mask = np.array([s == src for s in sources])
        ax.scatter(data.numbers[mask], data.values[mask], s=18, color=colour, label=src)
    ax.step(
        data.numbers, data.best_so_far, where="post", color="black", lw=1.5, label="best so far"
    )
    ax.set_xlabel("trial")
    ax.set_ylabel(data.value_label)
    ax.set_title(f"{data.name}: score evolution")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def _png_params(data: StudyData, path: Path, *, by_param: bool) -> None:
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
            ax.plot([r[0] for r in rows], xs, color="0.7", lw=0.8, zorder=1)
            ax.scatter([r[0] for r in rows], xs, s=16, c=cs, zorder=2)
            ax.set_xlabel("trial")
            ax.set_ylabel(name)
            axis = ax.yaxis
            if _is_log(dist):
                ax.set_yscale("log")
        if labels is not None:
            axis.set_ticks(range(len(labels)), labels)
    title = "score by hyperparameter" if by_param else "hyperparameters over iterations"
    fig.suptitle(f"{data.name}: {title}")
    fig.savefig(path, dpi=110)


def _png_optuna(plot: Callable[..., Any], data: StudyData, path: Path) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    # Optuna's matplotlib plots switch the global style to ggplot: keep that inside this block.
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        result = plot(data.study, **_target_kwargs(data))
        axes = np.atleast_1d(result).ravel()
        fig = axes[0].figure
        width, height = fig.get_size_inches()
        fig.set_size_inches(max(width, 6.4), max(height, 4.0))
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)


def _png_comparison(datas: Sequence[StudyData], path: Path) -> None:
    fig, axes = _mpl_figure(len(datas) + 1, sharey=True)
    for ax, data in zip(axes[:-1], datas, strict=True):
        ax.scatter(data.numbers, data.values, s=14, color="tab:blue", alpha=0.7)
        ax.step(data.numbers, data.best_so_far, where="post", color="black", lw=1.5)
        ax.set_title(data.name)
        ax.set_xlabel("trial")
    axes[0].set_ylabel(datas[0].value_label)
    ax = axes[-1]
    for data in datas:
        ax.step(np.arange(len(data.trials)), data.best_so_far, where="post", label=data.name)
    ax.set_title("best so far")
    ax.set_xlabel("completed trials")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


# --- plotly (HTML) ----------------------------------------------------------------------------


def _html_score_evolution(data: StudyData) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    sources = data.sources
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        fig.add_trace(
            go.Scatter(
                x=data.numbers[idx],
                y=data.values[idx],
                mode="markers",
                name=src,
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
        title=f"{data.name}: score evolution", xaxis_title="trial", yaxis_title=data.value_label
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
    for i, name in enumerate(data.distributions):
        r, c = divmod(i, cols)
        dist = data.distributions[name]
        trials = [(t, v) for t, v in zip(data.trials, data.values, strict=True) if name in t.params]
        xs, labels = _numeric(dist, [t.params[name] for t, _ in trials])
        numbers = [t.number for t, _ in trials]
        hover = [_hover(t) for t, _ in trials]
        if by_param:
            trace = go.Scatter(x=xs, y=[v for _, v in trials], mode="markers", hovertext=hover)
        else:
            trace = go.Scatter(x=numbers, y=xs, mode="lines+markers", hovertext=hover)
        fig.add_trace(trace.update(showlegend=False, name=name), row=r + 1, col=c + 1)
        axis_update: dict[str, Any] = {"type": "log"} if _is_log(dist) else {}
        if labels is not None:
            axis_update = {"tickvals": list(range(len(labels))), "ticktext": labels}
        if by_param:
            fig.update_xaxes(title_text=name, row=r + 1, col=c + 1, **axis_update)
        else:
            fig.update_xaxes(title_text="trial", row=r + 1, col=c + 1)
            fig.update_yaxes(row=r + 1, col=c + 1, **axis_update)
    title = "score by hyperparameter" if by_param else "hyperparameters over iterations"
    fig.update_layout(title=f"{data.name}: {title}", height=320 * rows)
    return fig


def _html_comparison(datas: Sequence[StudyData]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = [d.name for d in datas] + ["best so far"]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, shared_yaxes=True)
    for i, data in enumerate(datas):
        fig.add_trace(
            go.Scatter(x=data.numbers, y=data.values, mode="markers", name=f"{data.name} values"),
            row=1,
            col=i + 1,
        )
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(data.trials)),
                y=data.best_so_far,
                mode="lines",
                name=f"{data.name} best",
                line={"shape": "hv"},
            ),
            row=1,
            col=len(titles),
        )
    fig.update_layout(title="comparison", width=380 * len(titles))
    return fig


def _target_kwargs(data: StudyData) -> dict[str, Any]:
    if len(data.study.directions) == 1:
        return {}
    return {"target": lambda t: t.values[0], "target_name": data.value_label}


# --- driver -----------------------------------------------------------------------------------


def _study_figures(data: StudyData) -> dict[str, tuple[Callable[[Path], None], Callable[[], Any]]]:
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    def optuna_html(plot: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: plot(data.study, **_target_kwargs(data))

    return {
        "score_evolution": (
            lambda p: _png_score_evolution(data, p),
            lambda: _html_score_evolution(data),
        ),
        "score_by_param": (
            lambda p: _png_params(data, p, by_param=True),
            lambda: _html_params(data, by_param=True),
        ),
        "params_over_iterations": (
            lambda p: _png_params(data, p, by_param=False),
            lambda: _html_params(data, by_param=False),
        ),
        "history": (
            lambda p: _png_optuna(vis_mpl.plot_optimization_history, data, p),
            optuna_html(vis.plot_optimization_history),
        ),
        "importances": (
            lambda p: _png_optuna(vis_mpl.plot_param_importances, data, p),
            optuna_html(vis.plot_param_importances),
        ),
        "slice": (
            lambda p: _png_optuna(vis_mpl.plot_slice, data, p),
            optuna_html(vis.plot_slice),
        ),
    }


def _use_agg_backend() -> None:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


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
    ``summary.json``.
    """
    if not study_names:
        raise ValueError("Give at least one study name (--study NAME).")
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
    summary: dict[str, Any] = {"studies": {}, "skipped": []}

    def emit(stem: str, png: Callable[[Path], None], make_html: Callable[[], Any]) -> None:
        try:
            if "png" in formats:
                path = out / f"{stem}.png"
                png(path)
                written.append(path)
            if "html" in formats:
                path = out / f"{stem}.html"
                make_html().write_html(path, include_plotlyjs="directory")
                written.append(path)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            summary["skipped"].append({"figure": stem, "reason": str(exc)})

    for data in datas:
        summary["studies"][data.name] = _summary(data)
        if not data.trials:
            summary["skipped"].append(
                {"figure": f"{slug(data.name)}_*", "reason": "no completed trials"}
            )
            continue
        for figure, (png, make_html) in _study_figures(data).items():
            emit(f"{slug(data.name)}_{figure}", png, make_html)
    compared = [d for d in datas if d.trials]
    if len(compared) >= 2:
        emit(
            "comparison", lambda p: _png_comparison(compared, p), lambda: _html_comparison(compared)
        )

    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    written.append(out / "summary.json")
    (out / "index.html").write_text(_index_html(written, out))
    written.append(out / "index.html")
    return written


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


def _index_html(paths: Sequence[Path], out: Path) -> str:
    items = []
    for path in paths:
        rel = html.escape(path.relative_to(out).as_posix())
        if path.suffix == ".png":
            items.append(
                f'<figure><img src="{rel}" style="max-width:100%">'
                f"<figcaption>{rel}</figcaption></figure>"
            )
        else:
            items.append(f'<p><a href="{rel}">{rel}</a></p>')
    return "<!doctype html><meta charset=utf-8><title>optuna-llm report</title>\n" + "\n".join(
        items
    )


__all__ = [
    "STUDY_FIGURES",
    "StudyData",
    "load_study_data",
    "write_report",
]
