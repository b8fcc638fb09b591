"""Optuna's own GP, fitted on completed trials, as BaMSOO and the guided sampler's gate use it.

One small class over ``optuna._gp`` (reached through :mod:`optuna_llm._compat`): fitted in the
maximising convention on Optuna's normalised parameters, it answers in the objective's own
units. BaMSOO asks it for a node's bounds, the guided sampler for the upper confidence bound
of a proposal and for the prediction it shows the LLM next to each candidate.

Example:
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.5], [1.0]])
    >>> model = GPModel(X, np.array([0.0, 1.0, 0.0]), np.array([False]), None)
    >>> mu, sigma = model.predict(np.array([[0.5], [0.0]]))
    >>> bool(mu[0] > mu[1]), bool((sigma >= 0).all())
    (True, True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from optuna_llm._compat import GPRegressor


class GPModel:
    """Optuna's GP fitted on ``(X, y)``: ``X`` in Optuna's GP representation
    (``SearchSpace.get_normalized_params``), ``y`` in the maximising convention and the
    objective's own units; ``cache`` is the previous fit to start the kernel search from."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        is_categorical: np.ndarray,
        cache: GPRegressor | None,
    ) -> None:
        from optuna_llm._compat import optuna_gp as gp
        from optuna_llm._compat import optuna_gp_prior as prior

        self.mean = float(np.mean(y))
        self.std = max(float(np.std(y)), 1e-10)
        self.best = float(np.max(y))
        self.gpr = gp.fit_kernel_params(
            X=X,
            Y=(y - self.mean) / self.std,
            is_categorical=is_categorical,
            log_prior=prior.default_log_prior,
            minimum_noise=prior.DEFAULT_MINIMUM_NOISE_VAR,
            deterministic_objective=False,
            gpr_cache=cache,
        )

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at the rows of ``X``, in the objective's
        units (maximising convention)."""
        import torch

        with torch.no_grad():
            mean, var = self.gpr.posterior(torch.from_numpy(np.atleast_2d(X)))
        mu = mean.numpy().reshape(-1) * self.std + self.mean
        sigma = np.sqrt(np.clip(var.numpy().reshape(-1), 0.0, None)) * self.std
        return mu, sigma

    def bounds(self, x: np.ndarray, width: float) -> tuple[float, float]:
        """``(LCB, UCB) = mu -/+ width * sigma`` at one point ``x`` (GP representation)."""
        import torch

        with torch.no_grad():
            mean, var = self.gpr.posterior(torch.from_numpy(x))
        mu = float(mean) * self.std + self.mean
        sigma = math.sqrt(max(float(var), 0.0)) * self.std
        return mu - width * sigma, mu + width * sigma


__all__ = ["GPModel"]
