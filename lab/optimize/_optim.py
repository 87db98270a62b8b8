"""Maximisation of an acquisition function over a mixed (continuous x discrete) space.

Discrete columns (one-hot categories, the fidelity) take one of a list of *patterns*. Rather
than optimising every pattern separately (the cost grows with the number of patterns), raw
samples are spread over all patterns, the best raw points (plus the best of each pattern when
there are few) start L-BFGS-B with their own pattern held fixed, all in one batched run.
"""

from __future__ import annotations

from typing import Any

import torch

RAW_CHUNK = 256
"""Raw samples evaluated per acquisition call."""

PER_PATTERN_LIMIT = 16
"""Up to this many patterns, each pattern's best raw sample also starts a local run."""


def optimize_mixed(
    acqf: Any,
    bounds: torch.Tensor,
    patterns: list[dict[int, float]],
    *,
    num_restarts: int,
    raw_samples: int,
    generator: torch.Generator,
    maxiter: int = 100,
) -> tuple[torch.Tensor, float]:
    """Maximise ``acqf`` (a q=1 acquisition) over the box with discrete patterns.

    Args:
        acqf: Acquisition function taking ``b x 1 x D`` inputs.
        bounds: ``2 x D`` box.
        patterns: Values of the discrete columns; every candidate follows one pattern.
        num_restarts: Local runs from the best raw samples.
        raw_samples: Random points evaluated to choose the starts.
        generator: Random generator (seeded by the caller, so proposals are reproducible).
        maxiter: L-BFGS-B iterations.

    Returns:
        The best point (``D``) and its acquisition value.
    """
    from botorch.generation.gen import gen_candidates_scipy

    patterns = patterns or [{}]
    D = bounds.shape[-1]
    lo, hi = bounds[0], bounds[1]
    fixed_cols = sorted({j for p in patterns for j in p})
    free_cols = [j for j in range(D) if j not in fixed_cols]

    n_raw = max(raw_samples, len(patterns)) if free_cols else len(patterns)
    X = lo + (hi - lo) * torch.rand(n_raw, D, generator=generator, dtype=torch.double)
    order = torch.randperm(n_raw, generator=generator) % len(patterns)
    pat_of = order.tolist()
    for r, k in enumerate(pat_of):
        for j, v in patterns[k].items():
            X[r, j] = v

    with torch.no_grad():
        vals = torch.cat(
            [acqf(X[i : i + RAW_CHUNK].unsqueeze(1)) for i in range(0, n_raw, RAW_CHUNK)]
        )
    vals = torch.nan_to_num(vals, nan=-float("inf"))
    if not free_cols:
        best = int(torch.argmax(vals))
        return X[best], float(vals[best])

    starts = torch.argsort(vals, descending=True)[:num_restarts].tolist()
    if len(patterns) <= PER_PATTERN_LIMIT:
        for k in range(len(patterns)):
            rows = [r for r, pk in enumerate(pat_of) if pk == k]
            if rows:
                best_k = max(rows, key=lambda r: float(vals[r]))
                if best_k not in starts:
                    starts.append(best_k)
    X0 = X[starts].unsqueeze(1)
    fixed = {j: X0[:, 0, j].clone() for j in fixed_cols}
    cand, cand_vals = gen_candidates_scipy(
        initial_conditions=X0,
        acquisition_function=acqf,
        lower_bounds=lo,
        upper_bounds=hi,
        options={"maxiter": maxiter},
        fixed_features=fixed or None,
    )
    cand_vals = torch.nan_to_num(cand_vals.detach(), nan=-float("inf"))
    i = int(torch.argmax(cand_vals))
    # The local run never loses to its start unless the start was already the best raw point.
    if float(cand_vals[i]) < float(vals[starts[0]]):
        return X[starts[0]], float(vals[starts[0]])
    return cand[i, 0].detach(), float(cand_vals[i])
