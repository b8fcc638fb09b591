"""Run generated code in a separate, limited process.

The code runs in a fresh Python process whose working directory (and HOME/TMPDIR) is a new
temporary folder, with:

- a wall-clock time limit (the whole process group is killed) and a CPU-time rlimit;
- a memory limit (``RLIMIT_AS``), so large allocations raise ``MemoryError``;
- no network: ``unshare --net`` (an empty network namespace) where the kernel allows it, and
  always an audit hook (PEP 578) that refuses to create any socket (Unix sockets included);
- no writes outside the folder: the audit hook refuses ``open`` for writing, removals,
  renames and ``mkdir`` outside it, and refuses starting processes and loading native libraries
  after the allowed modules (``preload``) are imported.

Audit hooks stop mistakes and careless code (what an LLM writes), not a determined attacker
with ``ctypes`` tricks: run untrusted code from the internet in a container or VM as well.

Example:
    >>> result = run_code("def score():\\n    return 0.5", "import user_code\\n"
    ...                   "result = user_code.score()")
    >>> result.ok, result.score
    (True, 0.5)
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass

_RUNNER = r"""
import json, os, sys, traceback
_result_file = open(sys.argv[1], "w")
_root = os.path.realpath(os.getcwd())
for _name in sys.argv[2].split(","):
    if _name:
        __import__(_name)

_ALLOWED = (_root, os.devnull)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def _inside(path):
    if isinstance(path, int):
        return True  # an already-open descriptor
    try:
        real = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return any(real == a or real.startswith(a + os.sep) for a in _ALLOWED)

def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writing and not _inside(path):
            raise PermissionError(f"sandbox: writing outside the working directory: {path}")
    elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.truncate",
                   "os.symlink", "os.link", "shutil.rmtree", "os.utime", "os.chown"):
        if not _inside(args[0]):
            raise PermissionError(f"sandbox: {event} outside the working directory: {args[0]}")
    elif event in ("os.rename", "shutil.move", "shutil.copyfile"):
        if not (_inside(args[0]) and _inside(args[1])):
            raise PermissionError(f"sandbox: {event} outside the working directory")
    elif event in ("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
                   "socket.sendto", "socket.sendmsg"):
        # Every family: Unix sockets reach local daemons (databases, docker) even without a
        # network namespace.
        raise PermissionError("sandbox: network access is disabled")
    elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                   "os.fork", "os.forkpty", "pty.spawn", "ctypes.dlopen", "os.kill",
                   "os.killpg", "sys.addaudithook", "resource.setrlimit", "resource.prlimit"):
        raise PermissionError(f"sandbox: {event} is not allowed")

sys.addaudithook(_hook)

def _finish(payload):
    _result_file.write(json.dumps(payload))
    _result_file.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

try:
    sys.path.insert(0, _root)
    _namespace = {"__name__": "__sandbox__"}
    exec(compile(open("harness.py").read(), "harness.py", "exec"), _namespace)
    _score = float(_namespace["result"])
    _finish({"ok": True, "score": _score})
except MemoryError:
    _finish({"ok": False, "reason": "memory", "error": "MemoryError: the memory limit was hit"})
except PermissionError as exc:
    if str(exc).startswith("sandbox:"):
        _reason = "network" if "network" in str(exc) else "blocked"
        _finish({"ok": False, "reason": _reason, "error": traceback.format_exc(limit=-3)})
    _finish({"ok": False, "reason": "error", "error": traceback.format_exc(limit=-5)})
except KeyError as exc:
    if exc.args == ("result",):
        _finish({"ok": False, "reason": "error",
                 "error": "the harness did not set `result` (the score)"})
    _finish({"ok": False, "reason": "error", "error": traceback.format_exc(limit=-5)})
except BaseException:
    _finish({"ok": False, "reason": "error", "error": traceback.format_exc(limit=-5)})
"""


@dataclass
class SandboxResult:
    """What a sandboxed run produced. ``reason`` is ``ok``, ``error``, ``timeout``,
    ``memory``, ``network``, ``blocked`` (a refused file or process operation) or
    ``crashed`` (killed by a signal)."""

    ok: bool
    score: float | None
    reason: str
    error: str | None
    stdout: str
    stderr: str
    seconds: float

    def feedback(self, limit: int = 1500) -> str:
        """A short text for the next prompt: the score, or what went wrong."""
        if self.ok:
            return f"score {self.score:.6g} in {self.seconds:.1f} s"
        detail = (self.error or self.stderr or "").strip()
        return f"failed ({self.reason}): {detail[-limit:]}"


@functools.cache
def network_namespace_available() -> bool:
    """Whether ``unshare --net`` works here (root, or user namespaces enabled)."""
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        out = subprocess.run(
            [exe, "--net", "--map-root-user", "true"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def _limits(memory_mb: int, cpu_seconds: int) -> None:  # runs in the child before exec
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_code(
    code: str,
    harness: str,
    *,
    timeout: float = 60.0,
    memory_mb: int = 4096,
    preload: tuple[str, ...] = ("numpy",),
    files: dict[str, str] | None = None,
    isolate_network: bool | None = None,
) -> SandboxResult:
    """Run ``code`` (saved as ``user_code.py``) through ``harness`` in a sandboxed process.

    ``harness`` is Python that imports ``user_code``, evaluates it and sets ``result`` to a
    float score. ``preload`` modules are imported before the restrictions start (native
    libraries such as numpy or torch load then). ``files`` are extra files written into the
    working folder. ``isolate_network`` adds ``unshare --net`` (default: when available).
    """
    if timeout <= 0 or memory_mb < 64:
        raise ValueError("timeout must be > 0 seconds and memory_mb at least 64.")
    if isolate_network is None:
        isolate_network = network_namespace_available()
    outer = tempfile.mkdtemp(prefix="optuna-llm-sandbox-")
    work = os.path.join(outer, "work")
    os.mkdir(work)
    result_path = os.path.join(outer, "result.json")
    try:
        for name, text in {**(files or {}), "user_code.py": code, "harness.py": harness}.items():
            if os.path.basename(name) != name:
                raise ValueError(f"Sandbox file names must be plain names, got {name!r}.")
            with open(os.path.join(work, name), "w") as fh:
                fh.write(textwrap.dedent(text))
        with open(os.path.join(outer, "runner.py"), "w") as fh:
            fh.write(_RUNNER)
        argv = [sys.executable, "-I", os.path.join(outer, "runner.py"), result_path,
                ",".join(preload)]  # fmt: skip
        if isolate_network:
            argv = [shutil.which("unshare") or "unshare", "--net", "--map-root-user", *argv]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": work,
            "TMPDIR": work,
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        }
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
            preexec_fn=lambda: _limits(memory_mb, int(timeout) + 1),
        )  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            timed_out = True
        seconds = time.perf_counter() - start
        stdout, stderr = stdout[-4000:], stderr[-4000:]
        if timed_out or proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return SandboxResult(
                False, None, "timeout", f"stopped after the {timeout:g} s time limit",
                stdout, stderr, seconds,
            )  # fmt: skip
        try:
            with open(result_path) as fh:
                payload = json.load(fh)
        except (OSError, json.JSONDecodeError):
            payload = None
        if not payload:
            reason = "memory" if "MemoryError" in stderr else "crashed"
            return SandboxResult(
                False, None, reason, f"exit status {proc.returncode}: {stderr[-1500:]}",
                stdout, stderr, seconds,
            )  # fmt: skip
        if payload["ok"]:
            return SandboxResult(True, payload["score"], "ok", None, stdout, stderr, seconds)
        return SandboxResult(
            False, None, payload["reason"], payload["error"], stdout, stderr, seconds
        )
    finally:
        shutil.rmtree(outer, ignore_errors=True)
