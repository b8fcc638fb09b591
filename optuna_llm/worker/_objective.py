"""Load the objective that ``--objective`` names: a built-in, ``module:function`` or
``path/to/file.py:function``, without leaving ``sys.path`` changed."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BUILTIN_EXTRA = ("digits",)
"""Built-in objectives besides the toy functions (``objectives.toy.TOY_FUNCTIONS``)."""


def builtin_objectives() -> list[str]:
    """Names ``--objective`` accepts as built-ins (``quadratic<D>`` too).

    Example:
        >>> builtin_objectives()
        ['branin', 'rosenbrock', 'ackley', 'himmelblau', 'quadratic', 'digits']
    """
    from optuna_llm.objectives.toy import TOY_FUNCTIONS

    return [*TOY_FUNCTIONS, *BUILTIN_EXTRA]


def parse_kwargs(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``["a=1", "b=mlp"]`` -> ``{"a": 1, "b": "mlp"}`` (values parsed as JSON when possible).

    Example:
        >>> parse_kwargs(["epochs=2", "arch=mlp"], "--objective-arg")
        {'epochs': 2, 'arch': 'mlp'}
    """
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(
                f"{flag} expects KEY=VALUE with a Python identifier as KEY, got {pair!r}."
            )
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    return kwargs


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"Objective file {str(path)!r} does not exist.")
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path.resolve()):
        name = f"_optuna_llm_objective_{name}"  # never shadow an installed module
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise ValueError(f"Objective file {str(path)!r} cannot be imported as Python.")
    module = importlib.util.module_from_spec(spec)
    # Registered so that pickling and dataclasses in the file work, as for ``python file.py``.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _import_module(name: str, spec: str) -> Any:
    # Like ``python -m``: the working directory is importable while the module loads.
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"Cannot import {name!r} for --objective {spec!r} ({exc}); run from the folder "
            "that holds it or put it on PYTHONPATH."
        ) from exc
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def load_attr(spec: str) -> Any:
    """The attribute ``module:attr`` or ``path/to/file.py:attr`` names.

    Example:
        >>> load_attr("math:sqrt")(4.0)
        2.0
    """
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise ValueError(
            f"Objective {spec!r} is neither a built-in ({', '.join(builtin_objectives())}) nor "
            "module:function nor path/to/file.py:function."
        )
    if module_name.endswith(".py"):
        module = _import_file(Path(module_name))
    else:
        module = _import_module(module_name, spec)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"Module {module_name!r} has no attribute {attr!r}.") from None


def resolve_objective(spec: str, kwargs: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The objective callable named by ``--objective`` (built-ins are imported lazily).

    Example:
        >>> objective = resolve_objective("branin")
        >>> import optuna
        >>> optuna.create_study().optimize(objective, n_trials=2)
    """
    kwargs = dict(kwargs or {})
    if spec == "digits":
        from optuna_llm.objectives.image_classification import ImageClassificationObjective

        return ImageClassificationObjective(**{"dataset": "digits", **kwargs})
    if ":" not in spec:
        from optuna_llm.objectives.toy import get_toy_function

        try:
            toy = get_toy_function(spec)
        except ValueError as exc:
            raise ValueError(
                f"{exc} Built-in objectives: {', '.join(builtin_objectives())}; or give "
                "module:function."
            ) from None
        if kwargs:
            raise ValueError(f"The toy objective {spec!r} takes no --objective-arg.")
        return toy.objective
    attr = load_attr(spec)
    objective = attr(**kwargs) if kwargs else attr
    if not callable(objective):
        raise ValueError(f"{spec!r} is not callable: give a function taking an optuna.Trial.")
    return objective
