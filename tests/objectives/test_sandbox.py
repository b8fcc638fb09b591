"""The sandbox for generated code: escapes are stopped and reported, good code is scored."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from optuna_llm.objectives.sandbox import network_namespace_available, run_code

HARNESS = "import user_code\nresult = user_code.score()\n"


def test_good_code_is_scored_and_may_write_its_own_folder() -> None:
    code = """
import numpy as np
def score():
    with open("scratch.txt", "w") as fh:
        fh.write("ok")
    print("hello from the sandbox")
    return float(np.mean([0.25, 0.75]))
"""
    result = run_code(code, HARNESS, timeout=60)
    assert result.ok, result
    assert result.score == 0.5 and result.reason == "ok"
    assert "hello from the sandbox" in result.stdout
    assert result.feedback().startswith("score 0.5")


@pytest.mark.parametrize("isolate_network", [False, True])
def test_sockets_are_refused(isolate_network: bool) -> None:
    if isolate_network and not network_namespace_available():
        # Not a skip: without namespaces the audit hook alone must refuse (checked by False).
        isolate_network = False
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    code = f"""
import socket
def score():
    s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
    s.sendall(b"exfiltrate")
    return 0.0
"""
    result = run_code(code, HARNESS, timeout=30, isolate_network=isolate_network)
    thread.join()
    server.close()
    assert not result.ok
    assert result.reason == "network", result
    assert "network access is disabled" in (result.error or "")
    assert accepted == []  # the listening server never saw a connection
    unix = run_code(
        "import socket\ndef score():\n    socket.socket(socket.AF_UNIX)\n    return 0.0\n",
        HARNESS, timeout=30, isolate_network=isolate_network,
    )  # fmt: skip
    assert unix.reason == "network", unix


def test_writes_outside_the_folder_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "outside.txt"
    code = f"""
def score():
    with open({str(target)!r}, "w") as fh:
        fh.write("escaped")
    return 0.0
"""
    result = run_code(code, HARNESS, timeout=30)
    assert not result.ok and result.reason == "blocked", result
    assert "writing outside the working directory" in (result.error or "")
    assert not target.exists()
    # os-level calls and removals are refused too.
    keep = tmp_path / "keep.txt"
    keep.write_text("x")
    for body in (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
        f"import os; os.remove({str(keep)!r})",
        f"import os; os.open({str(tmp_path / 'y')!r}, os.O_WRONLY | os.O_CREAT)",
        "import subprocess; subprocess.run(['touch', '/tmp/sandbox-escape'])",
    ):
        res = run_code(f"def score():\n    {body}\n    return 0.0\n", HARNESS, timeout=30)
        assert not res.ok and res.reason == "blocked", (body, res)
    assert keep.exists() and not (tmp_path / "y").exists()
    assert not os.path.exists("/tmp/sandbox-escape")


def test_infinite_loop_is_stopped() -> None:
    result = run_code("def score():\n    while True:\n        pass\n", HARNESS, timeout=3)
    assert not result.ok and result.reason == "timeout"
    assert 2.5 < result.seconds < 20


def test_too_much_memory_is_stopped() -> None:
    code = "def score():\n    blob = bytearray(8 * 1024**3)\n    return float(len(blob))\n"
    result = run_code(code, HARNESS, timeout=30, memory_mb=1024)
    assert not result.ok and result.reason == "memory", result


def test_errors_are_reported_with_the_traceback() -> None:
    result = run_code("def score():\n    return 1 / 0\n", HARNESS, timeout=30)
    assert not result.ok and result.reason == "error"
    assert "ZeroDivisionError" in (result.error or "")
    syntax = run_code("def score(:\n", HARNESS, timeout=30)
    assert syntax.reason == "error" and "SyntaxError" in (syntax.error or "")
    assert syntax.feedback().startswith("failed (error)")
    with pytest.raises(ValueError, match="plain names"):
        run_code("x = 1", HARNESS, files={"../evil.py": ""})


def test_code_objective_feeds_failures_back_and_the_study_goes_on(tmp_path: Path) -> None:
    import dataclasses
    import json

    import optuna

    from optuna_llm.objectives.codegen import TOY_REGRESSION, CodeObjective
    from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer

    outside = tmp_path / "stolen.txt"
    good = (
        "import numpy as np\n"
        "def fit_predict(x, y, xt):\n"
        "    coef = np.polyfit(x, y, 7)\n"
        "    return np.polyval(coef, xt)\n"
    )
    attempts = [
        "import socket\ndef fit_predict(x, y, xt):\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n",
        f"def fit_predict(x, y, xt):\n    open({str(outside)!r}, 'w').write('x')\n",
        "def fit_predict(x, y, xt):\n    while True:\n        pass\n",
        "def fit_predict(x, y, xt):\n    return bytearray(16 * 1024**3)\n",
        good,
    ]
    replies = [
        Reply(json.dumps({"rationale": f"try {i}", "code": c})) for i, c in enumerate(attempts)
    ]
    task = dataclasses.replace(TOY_REGRESSION, timeout=3.0, memory_mb=1024)
    with ScriptedOpenAIServer(replies) as server:
        objective = CodeObjective(task, base_url=server.base_url)
        study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'code.db'}")
        study.optimize(objective, n_trials=5)
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "FAIL", "FAIL", "FAIL", "COMPLETE"]
    reasons = [t.user_attrs.get("sandbox") for t in study.trials]
    assert reasons == ["network", "blocked", "timeout", "memory", "ok"]
    assert not outside.exists()
    best = study.best_trial
    assert best.user_attrs["code"] == good and best.user_attrs["rationale"] == "try 4"
    assert best.user_attrs["source"] == "llm"
    assert 0 < best.value < 0.05  # a degree-7 polynomial fits sin(x) + 0.1 x^2 on [-3, 3]
    # Every earlier attempt and its failure reached the last prompt.
    last_prompt = server.requests[-1]["messages"][-1]["content"]
    for marker in ("failed (network)", "failed (blocked)", "failed (timeout)", "failed (memory)"):
        assert marker in last_prompt
    assert "while True" in last_prompt
