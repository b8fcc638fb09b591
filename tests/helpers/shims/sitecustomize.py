"""Test-environment workaround for CPU-only machines whose torchvision is a CUDA build.

On the project's CPU test machines, PyPI only has torchvision 0.28.0's CUDA wheel while torch
is the local CPU build, so ``torchvision/_C.so`` fails to load and ``import torchvision`` (hence
``import lightning`` and the ``litgpt`` CLI) dies with
``RuntimeError: operator torchvision::nms does not exist``. Registering the two missing op
schemas before torchvision's first import lets datasets, transforms and models work (ops.nms
and JPEG decoding do not, and we use neither).

This lives under ``tests/`` on purpose: it is never on the library's import path, so GPU users
with a matching torchvision are untouched. The test suite puts this directory on PYTHONPATH
(see tests/conftest.py), so subprocesses (``optuna-llm cifar``, ``python -m litgpt``) get it too.
It only acts when loading ``_C.so`` actually fails.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_applied = False


def apply_torchvision_workaround() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    import torch

    so_path = os.path.join(next(iter(spec.submodule_search_locations)), "_C.so")
    try:
        torch.ops.load_library(so_path)
        return  # a matching torchvision build: nothing to do
    except (OSError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for name in ("nms", "qnms"):
        try:
            lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass  # already defined
    # Keep the library object alive for the life of the process.
    sys.modules[__name__].__dict__["_torchvision_fragment"] = lib


class _TorchvisionHook(importlib.abc.MetaPathFinder):
    """Applies the workaround just before the first ``import torchvision``."""

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
        if fullname == "torchvision" and not _applied:
            sys.meta_path.remove(self)
            apply_torchvision_workaround()
        return None


if not any(isinstance(f, _TorchvisionHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchvisionHook())
