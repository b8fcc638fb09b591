"""Tests of samplers/llm_sampler: loaded with ``optunahub.load_local_module`` (no network),
it re-exports optuna-llm's LLMSampler and runs a short study against a scripted
OpenAI-compatible server on loopback (no key, no model); example.py runs as published."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
import json
from pathlib import Path
import random
import runpy
import threading
import time
from typing import Any

import optuna
import optunahub
import pytest


# The registry root: ``package/`` in optunahub-registry, ``optunahub/`` in optuna-llm.
REGISTRY_ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "samplers/llm_sampler"
module = optunahub.load_local_module(package=PACKAGE, registry_root=str(REGISTRY_ROOT))
LLMSampler = module.LLMSampler
RATIONALE = "a valid point of the schema"


def _schema(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of the answer, as OpenAI-style and llama.cpp-style clients send it."""
    fmt = request.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
    assert schema is not None, f"the client sent no JSON schema: {fmt}"
    return dict(schema)


def _valid_answer(schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, prop in schema["properties"]["config"]["properties"].items():
        if "enum" in prop:
            config[name] = rng.choice(prop["enum"])
        elif prop.get("type") == "integer":
            config[name] = rng.randint(prop["minimum"], prop["maximum"])
        else:
            config[name] = rng.uniform(prop["minimum"], prop["maximum"])
    return {"rationale": RATIONALE, "config": config}


class ScriptedServer:
    """Chat completions on 127.0.0.1: each answer is a random configuration valid for the
    request's schema. Requests are kept in ``requests``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        rng, lock, requests = random.Random(0), threading.Lock(), self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    requests.append(request)
                    answer = _valid_answer(_schema(request), rng)
                body = json.dumps(
                    {
                        "id": "chatcmpl-scripted",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": request.get("model", "scripted"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": json.dumps(answer)},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": 100,
                            "completion_tokens": 20,
                            "total_tokens": 120,
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    scripted.start()
    try:
        yield scripted
    finally:
        scripted.stop()


def branin(trial: optuna.Trial) -> float:
    import math

    x = trial.suggest_float("x", -5, 10)
    y = trial.suggest_float("y", 0, 15)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def test_is_the_optuna_llm_sampler() -> None:
    from optuna_llm.samplers import LLMSampler as original

    assert LLMSampler is original
    assert module.__all__ == ["LLMSampler"]


def test_short_study_takes_every_configuration_from_the_llm(server: ScriptedServer) -> None:
    sampler = LLMSampler(
        problem="Minimise the Branin function.",
        base_url=server.base_url,
        api_key="not-a-real-key",
        model="scripted",
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin, n_trials=6)
    assert len(study.trials) == 6 and server.requests
    for trial in study.trials:
        assert trial.user_attrs["source"] == "llm", trial.user_attrs
        assert trial.user_attrs["rationale"] == RATIONALE
        assert -5 <= trial.params["x"] <= 10 and 0 <= trial.params["y"] <= 15
    prompt = json.dumps(server.requests[-1]["messages"])
    assert "Branin" in prompt and "not-a-real-key" not in json.dumps(study.trials[-1].user_attrs)


def test_example_runs(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "not-a-real-key")
    monkeypatch.setenv("OPTUNA_LLM_MODEL", "scripted")

    def load_module(package: str, **_: Any) -> Any:
        return optunahub.load_local_module(package=package, registry_root=str(REGISTRY_ROOT))

    monkeypatch.setattr(optunahub, "load_module", load_module)
    runpy.run_path(str(REGISTRY_ROOT / PACKAGE / "example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count(f"llm {RATIONALE}") == 20  # every trial chosen by the (scripted) LLM
