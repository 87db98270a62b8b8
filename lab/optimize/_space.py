"""Encoding of a campaign's mixed design space into the unit cube and back, and its fidelities.

Continuous parameters map to [0, 1], linearly or (``scale: log``) logarithmically; each
categorical parameter is one-hot encoded.
The encoded vector has ``d = n_continuous + sum(n_choices)`` columns. A multi-fidelity model
sees one more column, the fidelity, whose value each model kind chooses (a task index or a
fidelity level; see :class:`FidelitySet`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch

from lab.spec import Campaign, CategoricalParameter, ContinuousParameter


def _safety_limit(spec: Campaign, name: str) -> float | None:
    """The safety limit that caps parameter ``name``: the lowest limit of the step arguments
    and route options it is bound to (:meth:`~lab.spec.Campaign.safe_range`)."""
    return spec.safe_range(name)[1]


class DesignSpace:
    """Bijection between parameter dicts and points of the unit cube.

    Safety limits are hard bounds: a continuous parameter's box is cut at its safety limit
    (the spec already rejects bounds above a limit; this keeps the optimiser safe on its own).

    Args:
        spec: The campaign whose parameters define the space.
    """

    def __init__(self, spec: Campaign) -> None:
        self.params = list(spec.parameters)
        self.dim = sum(
            1 if isinstance(p, ContinuousParameter) else len(p.choices) for p in self.params
        )
        upper: list[float] = []
        for p in self.params:
            if isinstance(p, ContinuousParameter):
                limit = _safety_limit(spec, p.name)
                u = 1.0 if limit is None else p.to_unit(max(min(limit, p.high), p.low))
                upper.append(min(1.0, max(0.0, u)))
            else:
                upper.extend([1.0] * len(p.choices))
        self.upper = torch.tensor(upper, dtype=torch.double)

    @property
    def categorical_slices(self) -> list[tuple[int, int]]:
        """``(start, stop)`` column ranges of each one-hot block."""
        out, i = [], 0
        for p in self.params:
            if isinstance(p, CategoricalParameter):
                out.append((i, i + len(p.choices)))
                i += len(p.choices)
            else:
                i += 1
        return out

    @property
    def continuous_columns(self) -> list[int]:
        """Columns of the continuous parameters."""
        cats = {j for a, b in self.categorical_slices for j in range(a, b)}
        return [j for j in range(self.dim) if j not in cats]

    def categorical_patterns(self) -> list[dict[int, float]]:
        """Every combination of categorical choices as fixed one-hot column values."""
        fixed: list[dict[int, float]] = [{}]
        for a, b in self.categorical_slices:
            fixed = [
                {**f, **{j: float(j == k) for j in range(a, b)}} for f in fixed for k in range(a, b)
            ]
        return fixed

    def column(self, name: str) -> int:
        """Encoded column of continuous parameter ``name``."""
        i = 0
        for p in self.params:
            if p.name == name and isinstance(p, ContinuousParameter):
                return i
            i += 1 if isinstance(p, ContinuousParameter) else len(p.choices)
        raise KeyError(name)

    def bounds(self) -> torch.Tensor:
        """``2 x d`` box of the encoded space (upper bounds cut by the safety limits)."""
        return torch.stack([torch.zeros(self.dim, dtype=torch.double), self.upper.clone()])

    def encode(self, params: dict[str, Any]) -> torch.Tensor:
        """Encode one parameter dict.

        Returns:
            A ``d`` tensor (double) in the unit cube.
        """
        x: list[float] = []
        for p in self.params:
            v = params[p.name]
            if isinstance(p, ContinuousParameter):
                x.append(p.to_unit(float(v)))
            else:
                x.extend(1.0 if c == v else 0.0 for c in p.choices)
        return torch.tensor(x, dtype=torch.double)

    def decode(self, x: torch.Tensor) -> dict[str, Any]:
        """Decode a ``d`` tensor into a parameter dict, clamped to the (safe) bounds."""
        out: dict[str, Any] = {}
        i = 0
        for p in self.params:
            if isinstance(p, ContinuousParameter):
                u = float(x[i].clamp(0.0, float(self.upper[i])))
                v = round(p.from_unit(u), 6)
                out[p.name] = min(max(v, p.low), p.from_unit(float(self.upper[i])))
                i += 1
            else:
                k = len(p.choices)
                out[p.name] = p.choices[int(torch.argmax(x[i : i + k]))]
                i += k
        return out

    def random(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n x d`` uniform random points of the encoded space with valid one-hot blocks."""
        x = torch.rand(n, self.dim, generator=generator, dtype=torch.double) * self.upper
        for a, b in self.categorical_slices:
            k = torch.randint(0, b - a, (n,), generator=generator)
            x[:, a:b] = torch.nn.functional.one_hot(k, b - a).double()
        return x

    def sobol(self, n: int, seed: int, skip: int = 0) -> list[dict[str, Any]]:
        """Space-filling design: scrambled Sobol for continuous, balanced cycling for categories.

        Args:
            n: Number of points.
            seed: Scrambling seed.
            skip: Points of the same sequence already used (so a resumed design continues).
        """
        n_cont = sum(isinstance(p, ContinuousParameter) for p in self.params)
        eng = torch.quasirandom.SobolEngine(max(n_cont, 1), scramble=True, seed=seed)
        if skip:
            eng.fast_forward(skip)
        u = eng.draw(n, dtype=torch.double)
        gen = torch.Generator().manual_seed(seed)
        perms = {
            p.name: torch.randperm(len(p.choices), generator=gen).tolist()
            for p in self.params
            if isinstance(p, CategoricalParameter)
        }
        out = []
        for row in range(n):
            params: dict[str, Any] = {}
            j = 0
            for p in self.params:
                if isinstance(p, ContinuousParameter):
                    params[p.name] = round(p.from_unit(float(u[row, j])), 6)
                    j += 1
                else:
                    perm = perms[p.name]
                    params[p.name] = p.choices[perm[(skip + row) % len(perm)]]
            out.append(params)
        return out


class FidelitySet:
    """The campaign's discrete fidelities, their costs and their encodings.

    Attributes:
        names: Fidelity names in file order.
        costs: Cost of each fidelity, in budget units.
        target: Name of the target fidelity (whose value is optimised).
        target_index: Index of the target in ``names``.
        blind: Encoded design columns each fidelity ignores (``{index: [column, ...]}``,
            only fidelities with ``ignores``).
    """

    def __init__(self, spec: Campaign) -> None:
        self.names = [f.name for f in spec.fidelities]
        space = DesignSpace(spec)
        self.blind = {
            i: sorted(space.column(n) for n in f.ignores)
            for i, f in enumerate(spec.fidelities)
            if f.ignores
        }
        self.costs = [float(f.cost) for f in spec.fidelities]
        self.target = spec.target.name
        self.target_index = self.names.index(self.target)
        ranked = sorted(range(len(self.names)), key=lambda i: (self.costs[i], i))
        # Levels in (0, 1], the target at 1 and the others spaced evenly by cost rank.
        others = [i for i in ranked if i != self.target_index]
        k = len(self.names)
        self._levels = {self.target_index: 1.0}
        for r, i in enumerate(others):
            self._levels[i] = (r + 1) / k

    def __len__(self) -> int:
        return len(self.names)

    @property
    def multi(self) -> bool:
        """Whether the campaign has more than one fidelity."""
        return len(self.names) > 1

    def index(self, name: str) -> int:
        """Position of fidelity ``name`` in file order."""
        return self.names.index(name)

    def level(self, i: int) -> float:
        """Fidelity level of fidelity ``i`` in (0, 1]; the target is 1 (for fidelity kernels)."""
        return self._levels[i]

    def cost_of(self, name: str) -> float:
        """Cost of fidelity ``name``."""
        return self.costs[self.index(name)]

    def by_cost(self) -> list[int]:
        """Fidelity indices from the cheapest to the most costly."""
        return sorted(range(len(self.names)), key=lambda i: (self.costs[i], i))


COVER_BUDGET_FRACTION = 0.1
"""Most of the budget the cheapest fidelity may spend to cover every categorical choice."""


def initial_plan(
    n0: int, fids: FidelitySet, n_cover: int = 0, budget: float = math.inf
) -> list[tuple[int, int]]:
    """Initial design as ``(sobol_index, fidelity_index)`` pairs, in the order they are asked.

    A single-fidelity campaign evaluates ``n0`` Sobol points at the target. A multi-fidelity
    campaign evaluates all ``n0`` points at the cheapest fidelity and the first
    ``max(2, ceil(n0 / 2))`` of them at every other fidelity (the target included), so the
    model sees each fidelity at shared designs and can learn how they relate, for less than
    the single-fidelity design costs. When a categorical parameter has more choices than
    ``n0`` (``n_cover``: the largest number of choices), the cheapest fidelity extends the
    design to ``n_cover`` points, so every choice is measured once (:meth:`DesignSpace.sobol`
    cycles through the choices), provided that costs at most
    :data:`COVER_BUDGET_FRACTION` of ``budget``: screening a materials library by its
    cheapest measurement before spending on the costly ones.
    """
    if not fids.multi:
        return [(i, fids.target_index) for i in range(n0)]
    order = fids.by_cost()
    n_half = min(n0, max(2, math.ceil(n0 / 2)))
    n_cheap = n0
    if n_cover > n0 and n_cover * fids.costs[order[0]] <= COVER_BUDGET_FRACTION * budget + 1e-12:
        n_cheap = n_cover
    counts = {i: (n_cheap if i == order[0] else n_half) for i in range(len(fids))}
    return [(i, f) for i, f in itertools.product(range(n_cheap), order) if i < counts[f]]
