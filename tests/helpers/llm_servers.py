"""Real OpenAI-compatible HTTP servers on loopback for tests.

- :class:`ScriptedOpenAIServer`: our own server whose replies are scripted (fault injection:
  garbage, wrong types, 429/500, timeouts, dropped connections) or computed from the request's
  JSON schema (:func:`random_valid_responder`).
- :func:`start_llama_server`: llama.cpp's own server (``python -m llama_cpp.server``) with the
  embedded Gemma model.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.request import urlopen


@dataclass
class Reply:
    """One scripted HTTP reply. ``content`` becomes the assistant message; ``raw`` replaces the
    whole body; ``drop`` closes the connection without answering."""

    content: str | None = None
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None
    drop: bool = False
    prompt_tokens: int = 11
    completion_tokens: int = 7
    headers: dict[str, str] | None = None


Responder = Callable[[dict[str, Any]], Reply]


def request_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt.get("json_schema", {}).get("schema")
    return fmt.get("schema")


def random_config(schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        if "enum" in prop:
            config[name] = rng.choice(prop["enum"])
        elif prop.get("type") == "integer":
            config[name] = rng.randint(prop["minimum"], prop["maximum"])
        else:
            config[name] = rng.uniform(prop["minimum"], prop["maximum"])
    return config


def random_valid_responder(seed: int = 0) -> Responder:
    """Answers every request with random configuration(s), or a random pick among labels,
    that satisfy its schema."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Reply:
        schema = request_schema(request)
        assert schema is not None, "the client sent no JSON schema"
        with lock:
            if "choice" in schema["properties"]:  # a pick among labelled candidates
                answer: dict[str, Any] = {
                    "choice": rng.choice(schema["properties"]["choice"]["enum"]),
                    "rationale": "random pick",
                }
            elif "config" in schema["properties"]:
                answer = {
                    "rationale": "random but valid",
                    "config": random_config(schema["properties"]["config"], rng),
                }
            else:
                items = schema["properties"]["configs"]
                answer = {
                    "rationale": "spread",
                    "configs": [
                        random_config(items["items"], rng) for _ in range(items["minItems"])
                    ],
                }
        return Reply(json.dumps(answer))

    return respond


class ScriptedOpenAIServer:
    """A threaded HTTP server speaking the chat-completions API on 127.0.0.1.

    ``script`` is a responder function or a list of replies used in order (the last one
    repeats). Requests are kept in ``self.requests``.
    """

    def __init__(
        self,
        script: Responder | list[Reply],
        *,
        model: str = "scripted-model",
        reject_json_schema: bool = False,
    ) -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.reject_json_schema = reject_json_schema
        self._script = script
        self._index = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if callable(self._script):
                responder = self._script
            else:
                reply = self._script[min(self._index, len(self._script) - 1)]
                self._index += 1
                return reply
        return responder(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and
                # delayed ACKs add ~40 ms to every request.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    body = {
                        "object": "list",
                        "data": [{"id": server.model, "object": "model", "owned_by": "tests"}],
                    }
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if len(raw) < length:  # the client went away mid-request (a killed worker)
                    return
                request = json.loads(raw or b"{}")
                fmt = (request.get("response_format") or {}).get("type")
                if server.reject_json_schema and fmt == "json_schema":
                    with server._lock:
                        server.requests.append(request)
                    self._send(500, b'{"error": {"message": "json_schema is not supported"}}')
                    return
                reply = server._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.raw is not None:
                    self._send(reply.status, reply.raw, reply.headers)
                    return
                if reply.status != 200:
                    body = json.dumps(
                        {"error": {"message": f"scripted {reply.status}", "type": "scripted"}}
                    ).encode()
                    self._send(reply.status, body, reply.headers)
                    return
                body = json.dumps(
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": server.model,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply.content},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens,
                            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                        },
                    }
                ).encode()
                self._send(200, body, reply.headers)

        return Handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def start_llama_server(n_ctx: int = 4096, timeout: float = 120.0) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server with the embedded Gemma model; yields base_url."""
    from optuna_llm.llm.embedded import default_model_path

    model = default_model_path()
    port = free_port()
    # The server logs a lot to stderr: a pipe nobody reads would fill up and block it.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx),
            "--chat_format",
            "gemma",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {err[-2000:]}")
            try:
                with urlopen(base_url + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start in time")
            time.sleep(0.5)
        yield base_url
    finally:
        log.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
