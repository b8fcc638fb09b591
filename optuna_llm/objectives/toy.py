"""Toy objectives with known optima: Branin, Rosenbrock, Ackley, Himmelblau and quadratics.

These are the paper's 2-D test functions. Each :class:`ToyFunction` is a plain function of a
point (``f(np.array([x0, x1]))``) and an Optuna objective (``study.optimize(f.objective)``)
that suggests ``x0 .. x{d-1}`` as floats in the function's standard bounds, so regret is
``study.best_value - f.optimum``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import optuna


@dataclass(frozen=True)
class ToyFunction:
    """A test function with box bounds and a known global minimum.

    Example:
        >>> import optuna
        >>> from optuna_llm.objectives.toy import TOY_FUNCTIONS
        >>> branin = TOY_FUNCTIONS["branin"]
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        >>> study.optimize(branin.objective, n_trials=20)
        >>> regret = study.best_value - branin.optimum
    """

    name: str
    function: Callable[[np.ndarray], float] = field(repr=False)
    bounds: tuple[tuple[float, float], ...]
    optimum: float
    """The known global minimum value."""
    minimizers: tuple[tuple[float, ...], ...] = ()
    """Points where the minimum is attained (all of them when there are finitely many)."""

    @property
    def dim(self) -> int:
        return len(self.bounds)

    @property
    def param_names(self) -> list[str]:
        return [f"x{i}" for i in range(self.dim)]

    def __call__(self, x: np.ndarray | Sequence[float]) -> float:
        point = np.asarray(x, dtype=float)
        if point.shape != (self.dim,):
            raise ValueError(
                f"{self.name} takes a point of shape ({self.dim},), got shape {point.shape}: "
                f"pass one value for each of {', '.join(self.param_names)}."
            )
        return float(self.function(point))

    def objective(self, trial: optuna.Trial) -> float:
        """Suggest ``x0 .. x{d-1}`` in the bounds and return the function value."""
        point = np.array(
            [
                trial.suggest_float(name, low, high)
                for name, (low, high) in zip(self.param_names, self.bounds, strict=True)
            ]
        )
        return self(point)

    def search_space(self) -> dict[str, optuna.distributions.FloatDistribution]:
        """The Optuna distributions :meth:`objective` suggests from."""
        return {
            name: optuna.distributions.FloatDistribution(low, high)
            for name, (low, high) in zip(self.param_names, self.bounds, strict=True)
        }


def branin(x: np.ndarray) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    x0, x1 = x
    return float(a * (x1 - b * x0**2 + c * x0 - r) ** 2 + s * (1 - t) * math.cos(x0) + s)


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def ackley(x: np.ndarray) -> float:
    d = len(x)
    term1 = -20.0 * math.exp(-0.2 * math.sqrt(float(np.sum(x**2)) / d))
    term2 = -math.exp(float(np.sum(np.cos(2 * math.pi * x))) / d)
    return term1 + term2 + 20.0 + math.e


def himmelblau(x: np.ndarray) -> float:
    x0, x1 = x
    return float((x0**2 + x1 - 11) ** 2 + (x0 + x1**2 - 7) ** 2)


def make_quadratic(
    dim: int = 2, *, center: float | Sequence[float] = 1.0, bound: float = 5.0
) -> ToyFunction:
    """``sum((x - center)**2)`` on ``[-bound, bound]**dim``; minimum 0 at ``center``.

    The default centre (1, ..., 1) is off the middle of the box on purpose: samplers that start
    at the centre (or LLMs that like round numbers such as 0) should not find it for free.

    Example:
        >>> quad = make_quadratic(5)
        >>> quad(np.ones(5))
        0.0
    """
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"make_quadratic needs a positive integer dim, got {dim!r}.")
    c = np.broadcast_to(np.asarray(center, dtype=float), (dim,)).copy()
    if np.any(np.abs(c) > bound):
        raise ValueError(
            f"The centre {c.tolist()} lies outside [-{bound}, {bound}]: pick a centre inside "
            "the bounds or a larger bound."
        )

    def quadratic(x: np.ndarray) -> float:
        return float(np.sum((x - c) ** 2))

    return ToyFunction(
        name="quadratic" if dim == 2 else f"quadratic{dim}",
        function=quadratic,
        bounds=((-bound, bound),) * dim,
        optimum=0.0,
        minimizers=(tuple(float(v) for v in c),),
    )


_BRANIN_MIN = 0.39788735772973816

TOY_FUNCTIONS: dict[str, ToyFunction] = {
    "branin": ToyFunction(
        "branin",
        branin,
        ((-5.0, 10.0), (0.0, 15.0)),
        _BRANIN_MIN,
        ((-math.pi, 12.275), (math.pi, 2.275), (3 * math.pi, 2.475)),
    ),
    "rosenbrock": ToyFunction(
        "rosenbrock", rosenbrock, ((-5.0, 10.0), (-5.0, 10.0)), 0.0, ((1.0, 1.0),)
    ),
    "ackley": ToyFunction(
        "ackley", ackley, ((-32.768, 32.768), (-32.768, 32.768)), 0.0, ((0.0, 0.0),)
    ),
    "himmelblau": ToyFunction(
        "himmelblau",
        himmelblau,
        ((-5.0, 5.0), (-5.0, 5.0)),
        0.0,
        (
            (3.0, 2.0),
            (-2.805118, 3.131312),
            (-3.779310, -3.283186),
            (3.584428, -1.848126),
        ),
    ),
    "quadratic": make_quadratic(2),
}
"""The paper's 2-D toy functions by name."""


def get_toy_function(name: str) -> ToyFunction:
    """Look up a toy function by name (``branin``, ``rosenbrock``, ``ackley``, ``himmelblau``,
    ``quadratic`` or ``quadratic<D>`` for a D-dimensional quadratic)."""
    if name in TOY_FUNCTIONS:
        return TOY_FUNCTIONS[name]
    if name.startswith("quadratic") and name[len("quadratic") :].isdigit():
        return make_quadratic(int(name[len("quadratic") :]))
    raise ValueError(
        f"Unknown toy function {name!r}. Choose one of: {', '.join(TOY_FUNCTIONS)}, "
        "or quadratic<D> (e.g. quadratic5)."
    )
