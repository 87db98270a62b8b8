"""Encoding of a campaign's mixed design space into the unit cube and back.

Continuous parameters map linearly to [0, 1]; each categorical parameter is one-hot encoded.
The encoded vector has ``d = n_continuous + sum(n_choices)`` columns.
"""

from __future__ import annotations

from typing import Any

import torch

from lab.spec import Campaign, CategoricalParameter, ContinuousParameter


class DesignSpace:
    """Bijection between parameter dicts and points of the unit cube.

    Args:
        spec: The campaign whose parameters define the space.
    """

    def __init__(self, spec: Campaign) -> None:
        self.params = list(spec.parameters)
        self.dim = sum(
            1 if isinstance(p, ContinuousParameter) else len(p.choices) for p in self.params
        )

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

    def encode(self, params: dict[str, Any]) -> torch.Tensor:
        """Encode one parameter dict.

        Returns:
            A ``d`` tensor (double) in the unit cube.
        """
        x: list[float] = []
        for p in self.params:
            v = params[p.name]
            if isinstance(p, ContinuousParameter):
                x.append((float(v) - p.low) / (p.high - p.low))
            else:
                x.extend(1.0 if c == v else 0.0 for c in p.choices)
        return torch.tensor(x, dtype=torch.double)

    def decode(self, x: torch.Tensor) -> dict[str, Any]:
        """Decode a ``d`` tensor into a parameter dict, clamped to the bounds."""
        out: dict[str, Any] = {}
        i = 0
        for p in self.params:
            if isinstance(p, ContinuousParameter):
                u = float(x[i].clamp(0.0, 1.0))
                out[p.name] = round(p.low + u * (p.high - p.low), 6)
                i += 1
            else:
                k = len(p.choices)
                out[p.name] = p.choices[int(torch.argmax(x[i : i + k]))]
                i += k
        return out

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
                    params[p.name] = round(p.low + float(u[row, j]) * (p.high - p.low), 6)
                    j += 1
                else:
                    perm = perms[p.name]
                    params[p.name] = p.choices[perm[(skip + row) % len(perm)]]
            out.append(params)
        return out
