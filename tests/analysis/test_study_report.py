"""``optuna-llm report``: the figures of finished studies, checked as real image files."""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from optuna_llm.analysis.study_report import PLOTLY_JS, STUDY_FIGURES, slug
from optuna_llm.cli import _report
from optuna_llm.samplers import LatinHypercubeSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def cli_main(argv: list[str]) -> int:
    """The sub-command's own parser and handler, as ``optuna-llm`` dispatches to them."""
    parser = argparse.ArgumentParser(prog="optuna-llm")
    _report.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 8, 64)
    opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    return (math.log10(lr) + 2.5) ** 2 + abs(width - 40) / 20 + (0.3 if opt == "sgd" else 0.0)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report')}/studies.db"
    lhs = optuna.create_study(
        storage=url, study_name="cifar lhs", sampler=LatinHypercubeSampler(12, seed=0)
    )
    lhs.optimize(_objective, n_trials=12)
    tpe = optuna.create_study(
        storage=url, study_name="cifar-tpe", sampler=optuna.samplers.TPESampler(seed=0)
    )
    tpe.optimize(_objective, n_trials=15)
    optuna.create_study(storage=url, study_name="empty")
    # Two sources in one study: 6 Latin-hypercube trials ("lhs"), then TPE (no source attr).
    mixed = optuna.create_study(
        storage=url, study_name="mixed", sampler=LatinHypercubeSampler(6, seed=1)
    )
    mixed.optimize(_objective, n_trials=6)
    mixed.sampler = optuna.samplers.TPESampler(seed=1)
    mixed.optimize(_objective, n_trials=6)
    return url


def _check_png(path: Path) -> np.ndarray:
    assert path.stat().st_size > 5_000, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300, (path, pixels.shape)
    assert pixels.std() > 5, f"{path} looks blank"  # a figure, not an empty canvas
    return pixels


def test_report_two_studies(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert (
        cli_main(
            ["report", storage, "--study", "cifar lhs", "--study", "cifar-tpe", "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out.split()

    pngs = sorted(out.glob("*.png"))
    htmls = sorted(p for p in out.glob("*.html") if p.name != "index.html")
    expected = {f"{slug(s)}_{f}" for s in ("cifar lhs", "cifar-tpe") for f in STUDY_FIGURES}
    expected.add("comparison")
    assert {p.stem for p in pngs} == expected
    assert {p.stem for p in htmls} == expected
    assert len(pngs) == 2 * len(STUDY_FIGURES) + 1 == 13
    for png in pngs:
        _check_png(png)
    for page in htmls:
        text = page.read_text()
        assert len(text) > 2_000 and "Plotly.newPlot" in text
    _check_one_plotly_script(out, n_figures=len(htmls))
    assert {str(p) for p in pngs} <= set(printed)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == []
    lhs = summary["studies"]["cifar lhs"]
    assert lhs["trials"] == {"COMPLETE": 12} and lhs["sources"] == {"lhs": 12}
    assert summary["studies"]["cifar-tpe"]["sources"] == {"(no source)": 15}
    best = optuna.load_study(study_name="cifar-tpe", storage=storage).best_trial
    assert summary["studies"]["cifar-tpe"]["best"]["number"] == best.number
    index = (out / "index.html").read_text()
    assert all(p.name in index for p in pngs)


def _check_one_plotly_script(out: Path, *, n_figures: int) -> None:
    """One copy of plotly's script in the folder; every HTML page loads it from there."""
    scripts = [p for p in out.iterdir() if p.stat().st_size > 1_000_000]
    assert [p.name for p in scripts] == [PLOTLY_JS]  # offline: the JS ships alongside, once
    assert "Plotly" in scripts[0].read_text()[:5_000]
    pages = sorted(out.glob("*.html"))
    assert len(pages) == n_figures + 1  # the figures and index.html
    for page in pages:
        text = page.read_text()
        assert text.count(f'<script charset="utf-8" src="{PLOTLY_JS}"></script>') == 1, page
        assert len(text) < 500_000, f"{page} carries its own copy of plotly"
    index = (out / "index.html").read_text()
    assert index.count('class="plotly-graph-div"') == n_figures  # every figure on one page


def _rgb(colour: Any) -> tuple[float, ...]:
    return tuple(round(c, 3) for c in to_rgb(colour))


def _handle_colours(artist: Any) -> set[tuple[float, ...]]:
    colours = set()
    for getter in ("get_color", "get_markerfacecolor", "get_facecolor"):
        value = getattr(artist, getter, lambda: None)()
        if value is None or (isinstance(value, str) and value == "none"):
            continue
        array = np.atleast_2d(np.asarray(value, dtype=object if isinstance(value, str) else float))
        if isinstance(value, str):
            colours.add(_rgb(value))
        else:
            colours |= {_rgb(row) for row in array if len(row) in (3, 4)}
    return colours


def png_unexplained_colours(fig: Figure) -> set[Any]:
    """Colours drawn in ``fig`` that no legend entry (or colour bar) explains."""
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    explained = set()
    for legend in legends:
        for handle in legend.legend_handles:
            explained |= _handle_colours(handle)
    has_colorbar = any(hasattr(ax, "_colorbar") for ax in fig.axes)
    used: set[Any] = set()
    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):
            continue
        for collection in ax.collections:
            if len(collection.get_offsets()) == 0:
                continue
            if collection.get_array() is not None:  # colour-mapped: the colour bar explains it
                if not has_colorbar:
                    used.add("colour map without a colour bar")
                continue
            used |= {_rgb(c) for c in collection.get_facecolor()}
        used |= {_rgb(line.get_color()) for line in ax.get_lines() if len(line.get_xdata())}
        used |= {_rgb(patch.get_facecolor()) for patch in ax.patches}
    return used - explained


def _n_points(values: Any) -> int:
    if values is None:
        return 0
    if isinstance(values, dict) and "bdata" in values:  # plotly's typed-array encoding
        return len(base64.b64decode(values["bdata"]))
    return len(values)


def plotly_figures(page: Path) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """(data, layout) of every ``Plotly.newPlot`` call in a written HTML page."""
    text = page.read_text()
    decoder = json.JSONDecoder()
    figures = []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', text):
        data, end = decoder.raw_decode(text, match.end())
        layout, _ = decoder.raw_decode(text, text.index("{", end))
        figures.append((data, layout))
    return figures


def plotly_unexplained_traces(data: list[dict[str, Any]], layout: dict[str, Any]) -> list[str]:
    """Traces that draw something in a colour no legend entry (or colour bar) explains."""
    in_legend = [t for t in data if t.get("showlegend", True) is not False and t.get("name")]
    legend_visible = layout.get("showlegend") is True or (
        layout.get("showlegend") is None and len(in_legend) >= 2
    )
    groups = {t.get("legendgroup") for t in in_legend if t.get("legendgroup")}
    has_scale = any(t.get("marker", {}).get("showscale") for t in data)
    bad = []
    for trace in data:
        if not (_n_points(trace.get("x")) or _n_points(trace.get("y"))):
            continue
        colour = trace.get("marker", {}).get("color")
        if isinstance(colour, (list, dict)) and not isinstance(colour, str):
            if not has_scale:
                bad.append(f"{trace.get('name')}: colour map without a colour bar")
            continue
        if not legend_visible or not (trace in in_legend or trace.get("legendgroup") in groups):
            bad.append(f"{trace.get('type')} {trace.get('name')!r}")
    return bad


def test_every_colour_has_a_legend(
    storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a real report (a study with two sources, and a comparison): every colour drawn in
    a PNG is in a legend or has a colour bar, and so is every plotly trace of every page."""
    saved: dict[str, Figure] = {}
    savefig = Figure.savefig

    def keep(fig: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        saved[Path(fname).stem] = fig
        savefig(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    out = tmp_path / "legends"
    argv = ["report", storage, "--study", "mixed", "--study", "cifar lhs", "--out", str(out)]
    assert cli_main(argv) == 0
    expected = {f"{slug(s)}_{f}" for s in ("mixed", "cifar lhs") for f in STUDY_FIGURES}
    assert set(saved) == expected | {"comparison"}
    for stem, fig in saved.items():
        assert png_unexplained_colours(fig) == set(), stem
    # The figures that colour by source name every source, once.
    for figure in ("score_evolution", "score_by_param", "params_over_iterations"):
        fig = saved[f"mixed_{figure}"]
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        labels = [t.get_text() for legend in legends for t in legend.get_texts()]
        assert {"lhs", "(no source)"} <= set(labels), (figure, labels)
        assert len(labels) == len(set(labels)), (figure, labels)

    pages = [p for p in out.glob("*.html") if p.name != "index.html"]
    assert len(pages) == len(saved)
    for page in pages:
        (figure,) = plotly_figures(page)
        assert plotly_unexplained_traces(*figure) == [], page.name
    data, _ = plotly_figures(out / "mixed_params_over_iterations.html")[0]
    assert {t["name"] for t in data if t.get("showlegend") is not False} == {
        "lhs",
        "(no source)",
        "in trial order",
    }
    _check_one_plotly_script(out, n_figures=len(pages))


def test_report_single_study_png_only(storage: str, tmp_path: Path) -> None:
    out = tmp_path / "one"
    assert (
        cli_main(["report", storage, "--study", "cifar-tpe", "--out", str(out), "--format", "png"])
        == 0
    )
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(
        f"cifar-tpe_{f}" for f in STUDY_FIGURES
    )
    assert not [p for p in out.glob("*.html") if p.name != "index.html"]


def test_report_errors_name_the_fix(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["report", storage, "--study", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "No study named 'nope'" in err and "cifar-tpe" in err
    # A study without completed trials is reported as skipped, not as a crash.
    assert cli_main(["report", storage, "--study", "empty", "--out", str(tmp_path / "e")]) == 0
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["skipped"][0]["reason"] == "no completed trials"
