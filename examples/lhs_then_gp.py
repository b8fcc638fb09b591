"""
Optuna example: the slides' BO-GP, a Gaussian process after a Latin hypercube initial design.

`LatinHypercubeSampler(n, seed=s)` spreads the first n trials over the whole search space (each
parameter's range cut into n strata, one trial in each); `GPSampler` takes over from trial n.
As a one-liner: `optuna_llm.samplers.make_sampler("lhs-gp", seed=0)` (10 LHS points).

Compared here on Branin (known minimum 0.398) with a pure Latin hypercube and plain GPSampler
(random initial design), a few seconds on a CPU:

    python examples/lhs_then_gp.py
"""

from __future__ import annotations

import optuna

from optuna_llm.objectives.toy import TOY_FUNCTIONS
from optuna_llm.samplers import LatinHypercubeSampler

N_INIT = 10
N_TRIALS = 25


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    branin = TOY_FUNCTIONS["branin"]
    samplers = {
        "LHS only": LatinHypercubeSampler(N_TRIALS, seed=0),
        "GP after random": optuna.samplers.GPSampler(n_startup_trials=N_INIT, seed=0),
        "GP after LHS (BO-GP)": optuna.samplers.GPSampler(
            n_startup_trials=N_INIT,
            independent_sampler=LatinHypercubeSampler(N_INIT, seed=0),
            seed=0,
        ),
    }
    for name, sampler in samplers.items():
        study = optuna.create_study(sampler=sampler)
        study.optimize(branin.objective, n_trials=N_TRIALS)
        from_lhs = sum(t.user_attrs.get("source") == "lhs" for t in study.trials)
        regret = study.best_value - branin.optimum
        print(
            f"{name:22s} best {study.best_value:8.4f}  regret {regret:.4f}"
            f"  ({from_lhs} trials from the Latin hypercube)"
        )


if __name__ == "__main__":
    main()
