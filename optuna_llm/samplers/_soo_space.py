"""The search space of SOO/BaMSOO's tree before any trial has completed.

Optuna's ``IntersectionSearchSpace`` is built from COMPLETE trials only, so with N workers the
first N trials asked would all see an empty space and be drawn at random (a third of a
50-evaluation budget at 16 workers). Until a trial completes, the tree takes its space from
the trials still RUNNING that already suggested their parameters: the intersection of their
distributions, as Optuna's would be once they complete.

A running trial may still be suggesting (with real workers it is seen mid-objective): a trial
whose parameter names are a strict subset of another running trial's is skipped, so a
half-suggested trial does not shrink the space to its first few parameters. Once a trial
completes, the usual intersection over completed trials takes over; in the common case (every
trial suggests the same parameters) it is the same space, so the nodes claimed before carry the
same space hash and stay in the tree.

When the only running trial that suggested anything is still suggesting, nothing tells it from
an objective with fewer parameters: the space is then its first few, and the trial asking holds
a node of *that* space's tree (the other parameters drawn by the independent sampler, with a
``fallback_reason``). Such a node is a different point from the full tree's node of the same
key and never conflicts with it; the full tree ignores it (it is worth one random draw). It
can happen only before the first trial completes.

Example:
    >>> from optuna.distributions import FloatDistribution, IntDistribution
    >>> x, n = FloatDistribution(0, 1), IntDistribution(1, 5)
    >>> sorted(running_search_space([{"x": x, "n": n}, {"x": x}]))  # {"x"}: mid-suggest
    ['n', 'x']
    >>> sorted(running_search_space([{"x": x, "n": n}, {"x": x, "m": n}]))  # conditional
    ['x']
    >>> running_search_space([])
    {}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


def running_search_space(
    spaces: Sequence[Mapping[str, BaseDistribution]],
) -> dict[str, BaseDistribution]:
    """Intersection of ``spaces`` (running trials' distributions), leaving out each one whose
    parameter names are a strict subset of another's (a trial still suggesting)."""
    given = [s for s in spaces if s]
    names = [frozenset(s) for s in given]
    kept = [s for s, own in zip(given, names, strict=True) if not any(own < o for o in names)]
    if not kept:
        return {}
    space = dict(kept[0])
    for other in kept[1:]:
        space = {n: d for n, d in space.items() if other.get(n) == d}
    return space


def unfinished_search_space(study: Study, me: FrozenTrial) -> dict[str, BaseDistribution]:
    """The space of :func:`running_search_space` over the study's RUNNING trials other than
    ``me``, or ``{}`` if some trial has completed (the intersection of completed trials then
    decides, as before) or none has suggested anything yet."""
    trials = study._storage.get_all_trials(
        study._study_id, deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
    )
    if any(t.state == TrialState.COMPLETE for t in trials):
        return {}
    return running_search_space([t.distributions for t in trials if t._trial_id != me._trial_id])
