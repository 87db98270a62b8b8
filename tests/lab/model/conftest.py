"""Model tests: a per-session cache directory and a small slice of the library."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.truths_interface import interlayer_asr

MODS = ["Au", "LiF", "MgO", "Al"]
PARTS = ["LLZO", "LLTO"]


@pytest.fixture(autouse=True, scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LAB_CACHE_DIR", str(tmp_path_factory.mktemp("lab-cache")))
    yield
    mp.undo()


def draw(n: int, fidelity: str, seed: int, mods=MODS, parts=PARTS) -> list[dict]:
    """``n`` observations from the reference truth at random parameters."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = {
            "modifier": mods[rng.integers(len(mods))],
            "partner": parts[rng.integers(len(parts))],
            "thickness_nm": float(10 ** rng.uniform(np.log10(0.5), np.log10(50))),
            "anneal_temperature_c": float(rng.uniform(25, 400)),
            "anneal_time_min": float(rng.uniform(0, 120)),
        }
        out.append({**p, "fidelity": fidelity, "value": interlayer_asr(p, fidelity, rng)})
    return out


def calc_labels(mods=MODS, parts=PARTS) -> list[tuple[str, str, float, float]]:
    rng = np.random.default_rng(0)
    return [
        (
            m,
            p,
            h,
            interlayer_asr({"modifier": m, "partner": p, "thickness_nm": h}, "calculation", rng),
        )
        for m in mods
        for p in parts
        for h in (0.5, 3.0, 20.0)
    ]
