"""The project's interface surrogate inside the optimiser (model ``mf_surrogate``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lab.errors import LabError
from lab.optimize import Optimizer, surrogate_for
from lab.spec import parse_campaign
from simulators.truths_interface import interlayer_asr

MODS = ["Au", "LiF", "MgO", "Al"]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lab-cache"))


def campaign(mods: list[str] = MODS) -> object:
    params = [
        {"name": "modifier", "type": "categorical", "choices": mods},
        {"name": "thickness_nm", "type": "continuous", "low": 0.5, "high": 50, "unit": "nm"},
        {
            "name": "anneal_temperature_c",
            "type": "continuous",
            "low": 25,
            "high": 400,
            "unit": "degC",
        },
    ]
    return parse_campaign(
        {
            "name": "interlayer",
            "interface": {"substrate": "Li", "other_phase": "LLZO"},
            "parameters": params,
            "process": [
                {
                    "step": "deposit",
                    "device": "deposition",
                    "args": {"material": "$modifier", "thickness": "$thickness_nm"},
                },
                {
                    "step": "anneal",
                    "device": "hotplate",
                    "args": {"temperature": "$anneal_temperature_c"},
                },
            ],
            "objective": {
                "name": "asr",
                "unit": "ohm*cm^2",
                "direction": "minimize",
                "log_transform": True,
            },
            "fidelities": [
                {"name": "full", "cost": 1.0, "route": "calculation"},
                {"name": "calculation", "cost": 0.05, "route": "calculation"},
                {"name": "screening", "cost": 0.25, "route": "calculation"},
            ],
            "target_fidelity": "full",
            "budget": 6,
            "initial_design": 4,
            "safety": {"max_temperature_c": 400},
        },
        "<test>",
    )


def labels(mods: list[str] = MODS) -> list[tuple[str, str, float, float]]:
    return [
        (m, "LLZO", h, interlayer_asr({"modifier": m, "thickness_nm": h}, "calculation", None))
        for m in mods
        for h in (1.0, 10.0)
    ]


def run(opt: Optimizer, spec, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        (p,) = opt.ask(1)
        spec.check_params(p.params)
        opt.tell(p, interlayer_asr(p.params, p.fidelity, rng))
        out.append(p)
    return out


def test_needs_a_prepared_surrogate_and_a_modifier_choice() -> None:
    spec = campaign()
    with pytest.raises(LabError, match="needs the prepared surrogate"):
        Optimizer(spec, model="mf_surrogate")
    s = surrogate_for(spec, "descriptor_gp")
    with pytest.raises(LabError, match="goes with model='mf_surrogate'"):
        Optimizer(spec, surrogate=s)
    with pytest.raises(LabError, match="unknown surrogate kind"):
        surrogate_for(spec, "bogus")
    no_mod = spec.model_copy(update={"process": spec.process[1:]})
    with pytest.raises(LabError, match="bound to a deposit step's material"):
        surrogate_for(no_mod, "descriptor_gp")


def test_encoded_inputs_map_to_the_surrogate_columns() -> None:
    spec = campaign()
    s = surrogate_for(spec, "descriptor_gp")
    opt = Optimizer(spec, model="mf_surrogate", surrogate=s)
    params = {"modifier": "MgO", "thickness_nm": 12.5, "anneal_temperature_c": 200.0}
    x = opt.space.encode(params)
    fid = opt._fid_value("screening")
    raw = opt._encoded.to_raw(torch.cat([x, torch.tensor([fid], dtype=torch.double)]))
    # the partner is the campaign's other phase; the columns come from the process bindings
    expected = s.encode([{**params, "partner": "LLZO"}], "screening")[0]
    assert torch.allclose(raw, expected)
    # the fidelity column is the rank by cost: calculation 0, screening 1, full 2
    assert [opt._fid_value(f) for f in ("calculation", "screening", "full")] == [0.0, 1.0, 2.0]


def test_closed_loop_with_the_pretrained_interface_gnn() -> None:
    spec = campaign()
    s = surrogate_for(spec, "interface_gnn", labels(), epochs=10)
    assert s.table is not None and s.table.shape[:2] == (len(MODS), 1)
    opt = Optimizer(spec, seed=1, model="mf_surrogate", surrogate=s, num_restarts=2)
    props = run(opt, spec, 10)
    chosen = [p for p in props if p.strategy != "initial_design"]
    assert chosen, "the model chose no experiment"
    for p in chosen:
        assert p.strategy in {"mf_gibbon", "verify_best", "qlognei"}
        assert p.fidelity in {"calculation", "screening", "full"}
        assert len(p.model_version) == 12 and math.isfinite(p.acquisition_value)
    assert "open" in opt.gate and math.isfinite(opt.gate.get("loo_mf", 0.0))
    rec = opt.recommend()
    assert rec.fidelity == "full" and rec.params["modifier"] in MODS
    # resumable: the same next proposal from the state dict (the surrogate passed again)
    twin = Optimizer.from_state_dict(spec, opt.state_dict(), surrogate=s, num_restarts=2)
    a, b = opt.ask(1)[0], twin.ask(1)[0]
    assert a.params == b.params and a.fidelity == b.fidelity
