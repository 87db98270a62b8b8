"""Multi-fidelity, failures, categories and safety in the ask/tell optimiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lab.errors import LabError
from lab.optimize import Optimizer, Proposal, model_names, register_model
from lab.optimize._feasibility import Feasibility
from lab.optimize._optim import optimize_mixed
from lab.optimize._space import DesignSpace, FidelitySet, initial_plan
from lab.spec import Campaign, parse_campaign
from simulators.truths import demo_interface

FAST = {"num_restarts": 2, "raw_samples": 64}


def mf_data(**extra) -> dict:
    data = {
        "name": "mf",
        "interface": {"substrate": "Li", "other_phase": "LLZO"},
        "parameters": [
            {
                "name": "precursor_volume_ul",
                "type": "continuous",
                "low": 2,
                "high": 40,
                "unit": "uL",
            },
            {"name": "solvent_volume_ul", "type": "continuous", "low": 0, "high": 40, "unit": "uL"},
        ],
        "objective": {"name": "r", "unit": "ohm", "direction": "minimize"},
        "fidelities": [
            {"name": "calculation", "cost": 0.05, "route": "calculation"},
            {"name": "screening", "cost": 0.25, "route": "calculation"},
            {"name": "full", "cost": 1.0, "route": "calculation"},
        ],
        "target_fidelity": "full",
        "budget": 10,
        "initial_design": 4,
    }
    data.update(extra)
    return data


@pytest.fixture(scope="module")
def mf_spec() -> Campaign:
    return parse_campaign(mf_data())


def run(opt: Optimizer, steps: int, seed: int = 0) -> list[Proposal]:
    rng = np.random.default_rng(seed)
    done = []
    for _ in range(steps):
        (p,) = opt.ask(1)
        opt.tell(p, demo_interface(p.params, p.fidelity, rng))
        done.append(p)
    return done


def test_fidelity_set_levels_and_initial_plan(mf_spec) -> None:
    fids = FidelitySet(mf_spec)
    assert fids.multi and fids.target == "full" and fids.target_index == 2
    assert [fids.level(i) for i in range(3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    plan = initial_plan(4, fids)
    # 4 designs at the cheapest fidelity, the first 2 of them at the others
    assert sorted(plan) == sorted([(i, 0) for i in range(4)] + [(0, 1), (1, 1), (0, 2), (1, 2)])
    single = parse_campaign(
        mf_data(fidelities=[{"name": "full", "cost": 1, "route": "calculation"}])
    )
    assert initial_plan(4, FidelitySet(single)) == [(i, 0) for i in range(4)]


def test_initial_design_covers_every_choice_at_the_cheapest_fidelity() -> None:
    choices = [f"M{i}" for i in range(9)]
    data = mf_data(initial_design=4)
    data["parameters"] = [
        *data["parameters"],
        {"name": "modifier", "type": "categorical", "choices": choices},
    ]
    spec = parse_campaign(data)
    opt = Optimizer(spec, seed=3, **FAST)
    plan = opt._plan
    cheap = [p for p in plan if p[1] == 0]
    assert len(cheap) == 9 and len([p for p in plan if p[1] == 2]) == 2
    asked = [opt.ask(1)[0] for _ in plan]
    assert all(p.strategy == "initial_design" for p in asked)
    assert {p.params["modifier"] for p in asked if p.fidelity == "calculation"} == set(choices)
    assert sum(p.cost for p in asked) == pytest.approx(9 * 0.05 + 2 * 0.25 + 2 * 1.0)
    # past the plan, the Sobol sequence goes on after the last planned point
    assert opt._plan_points == 9
    # too costly to cover (9 x 0.05 > 10 % of a budget of 4): the plain design
    tight = parse_campaign({**data, "budget": 4})
    assert len([p for p in Optimizer(tight, seed=3, **FAST)._plan if p[1] == 0]) == 4
    fids = FidelitySet(spec)
    assert initial_plan(4, fids, n_cover=3, budget=10) == initial_plan(4, fids)


def test_multi_fidelity_initial_design_then_cost_aware_proposals(mf_spec) -> None:
    opt = Optimizer(mf_spec, seed=0, **FAST)
    assert opt.multi_fidelity and opt.acquisition == "mf_gibbon" and opt.model_name == "mf_ltk"
    init = run(opt, 8)
    assert all(p.strategy == "initial_design" for p in init)
    by_fid = {f: [p.params for p in init if p.fidelity == f] for f in opt.fids.names}
    assert len(by_fid["calculation"]) == 4 and len(by_fid["full"]) == 2
    assert by_fid["full"] == by_fid["calculation"][:2]
    assert {p.cost for p in init if p.fidelity == "screening"} == {0.25}
    nxt = run(opt, 3)
    for p in nxt:
        # the acquisition, a measurement of the model's best design at the target, or (when
        # the cheap fidelities stop helping) qLogNEI at the target
        assert p.strategy in {"mf_gibbon", "verify_best", "qlognei"}
        assert p.cost == opt.fids.cost_of(p.fidelity) and len(p.model_version) == 12
        if p.strategy == "verify_best":  # acquisition_value: the predicted value
            assert p.fidelity == "full"
        assert math.isfinite(p.acquisition_value)
        mf_spec.check_params(p.params)
    assert "open" in opt.gate
    rec = opt.recommend()
    assert rec.fidelity == "full"
    mf_spec.check_params(rec.params)
    assert opt.spent == pytest.approx(sum(p.cost for p in init + nxt))


def test_pending_batch_is_diverse_and_state_resumes_exactly(mf_spec) -> None:
    opt = Optimizer(mf_spec, seed=1, **FAST)
    run(opt, 8)
    a, b = opt.ask(2)
    xa = torch.cat([opt.space.encode(a.params), torch.tensor([opt._fid_value(a.fidelity)])])
    xb = torch.cat([opt.space.encode(b.params), torch.tensor([opt._fid_value(b.fidelity)])])
    assert torch.linalg.norm(xa - xb) > 1e-3
    opt.tell(a, demo_interface(a.params, a.fidelity, np.random.default_rng(0)))
    clone = Optimizer.from_state_dict(mf_spec, opt.state_dict(), **FAST)
    assert clone.state_dict() == opt.state_dict()
    assert clone.ask(1)[0].params == opt.ask(1)[0].params


def test_categorical_modifier_with_fidelities() -> None:
    data = mf_data(
        parameters=[
            {"name": "modifier", "type": "categorical", "choices": ["LiF", "Al2O3", "ZnO"]},
            {
                "name": "precursor_volume_ul",
                "type": "continuous",
                "low": 2,
                "high": 40,
                "unit": "uL",
            },
        ],
        fidelities=[
            {"name": "calculation", "cost": 0.1, "route": "calculation"},
            {"name": "full", "cost": 1.0, "route": "calculation"},
        ],
        initial_design=3,
    )
    spec = parse_campaign(data)
    opt = Optimizer(spec, seed=0, **FAST)
    penalty = {"LiF": 0.0, "Al2O3": 3.0, "ZnO": 6.0}
    for _ in range(8):
        (p,) = opt.ask(1)
        spec.check_params(p.params)
        v = 10 + penalty[p.params["modifier"]] + (p.params["precursor_volume_ul"] - 12) ** 2 / 20
        opt.tell(p, v * (1.1 if p.fidelity == "calculation" else 1.0))
    strategies = {p["proposal"]["strategy"] for p in opt.state_dict()["observations"]}
    assert "initial_design" in strategies and strategies & {"mf_gibbon", "verify_best"}
    assert opt.recommend().params["modifier"] in penalty


def test_failures_are_infeasibility_data() -> None:
    X_ok = torch.tensor([[0.9, 0.9], [0.8, 0.1]], dtype=torch.double)
    feas = Feasibility(X_ok, torch.tensor([[0.2, 0.2]], dtype=torch.double))
    p = feas.prob(torch.tensor([[0.2, 0.2], [0.9, 0.9], [0.5, 0.9]], dtype=torch.double))
    assert p[0] < 0.15 < 0.9 < p[1]
    assert p[2] == pytest.approx(2 / 3, abs=0.05)  # far from all data: the overall rate

    spec = parse_campaign(mf_data(fidelities=[{"name": "full", "cost": 1, "route": "calculation"}]))
    opt = Optimizer(spec, seed=0, **FAST)
    for p in opt.ask(4):
        opt.tell(p, demo_interface(p.params, "full", np.random.default_rng(0)))
    (bad,) = opt.ask(1)
    opt.tell_failed(bad, "film did not form")
    (nxt,) = opt.ask(1)
    assert nxt.params != bad.params and nxt.strategy == "qlognei"
    assert opt.state_dict()["failed"][0]["reason"] == "film did not form"


def test_safety_limits_are_hard_bounds() -> None:
    # the volumes are dispensed: the dispense step's volume limit caps them
    process = [
        {"step": "dispense", "device": "precursor", "args": {"volume": "$precursor_volume_ul"}},
        {"step": "dispense", "device": "solvent", "args": {"volume": "$solvent_volume_ul"}},
    ]
    fidelities = [{"name": "full", "cost": 1.0, "route": "impedance_sweep"}]
    spec = parse_campaign(mf_data(process=process, fidelities=fidelities))
    assert torch.equal(DesignSpace(spec).bounds()[1], torch.ones(2, dtype=torch.double))
    # A campaign that slipped past validation with a bound above the safety limit.
    unsafe_param = spec.parameters[0].model_copy(update={"high": 400.0})
    unsafe = Campaign.model_construct(
        **{**dict(spec), "parameters": [unsafe_param, spec.parameters[1]]}
    )
    space = DesignSpace(unsafe)
    limit = spec.safety.max_dispense_volume_ul
    assert float(space.upper[0]) == pytest.approx((limit - 2) / (400 - 2))
    top = space.decode(torch.ones(2, dtype=torch.double))
    assert top["precursor_volume_ul"] == pytest.approx(limit)


def test_optimize_mixed_finds_the_best_pattern() -> None:
    def acqf(X: torch.Tensor) -> torch.Tensor:
        x = X[..., 0, :]
        return -((x[..., 0] - 0.3) ** 2) + x[..., 1] * 0.5 - x[..., 2]

    bounds = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.double)
    patterns = [{1: 0.0, 2: 0.0}, {1: 1.0, 2: 0.0}, {1: 1.0, 2: 1.0}]
    x, v = optimize_mixed(
        acqf, bounds, patterns, num_restarts=2, raw_samples=32, generator=torch.Generator()
    )
    assert x[1] == 1.0 and x[2] == 0.0
    assert float(x[0]) == pytest.approx(0.3, abs=1e-3) and v == pytest.approx(0.5, abs=1e-5)


def test_registries_refuse_duplicates_and_mismatches(mf_spec) -> None:
    assert {"mf_mt", "mf_ltk", "mf_ds", "mf_feature", "gp"} <= set(model_names())
    with pytest.raises(LabError, match="already registered"):
        register_model("mf_ltk")(lambda *a: None)
    with pytest.raises(LabError, match="unknown model"):
        Optimizer(mf_spec, model="nope")
    single = parse_campaign(
        mf_data(fidelities=[{"name": "full", "cost": 1, "route": "calculation"}])
    )
    with pytest.raises(LabError, match="chooses fidelities"):
        Optimizer(single, acquisition="mf_gibbon")
    # a single-fidelity model on a multi-fidelity campaign: the target only, as before
    opt = Optimizer(mf_spec, model="gp")
    assert not opt.multi_fidelity and opt.acquisition == "qlognei"
    assert {p.fidelity for p in opt.ask(4)} == {"full"}
    with pytest.raises(LabError, match="not one of the campaign"):
        opt.tell(Proposal({"precursor_volume_ul": 3, "solvent_volume_ul": 3}, "nope", 1, "x"), 1.0)


def _blind_data(**extra) -> dict:
    data = mf_data(**extra)
    data["fidelities"][0]["ignores"] = ["solvent_volume_ul"]
    return data


def test_a_fidelity_blind_to_a_parameter_holds_it_and_the_model_cannot_tell() -> None:
    """The calculation ignores the solvent volume: its proposals (initial design and
    acquisition alike) hold it at the middle of its range, and two calculation results that
    differ only in it are the same model input."""
    spec = parse_campaign(_blind_data())
    opt = Optimizer(spec, seed=1, fidelity_gate=False, **FAST)
    done = run(opt, 16)
    calc = [p for p in done if p.fidelity == "calculation"]
    assert len(calc) >= 4 and any(p.strategy != "initial_design" for p in calc)
    assert all(p.params["solvent_volume_ul"] == 20.0 for p in calc)
    others = [p.params["solvent_volume_ul"] for p in done if p.fidelity != "calculation"]
    assert len(set(others)) > 2  # the fidelities that see it still explore it
    a = Proposal({"precursor_volume_ul": 10.0, "solvent_volume_ul": 1.0}, "calculation", 0.05, "t")
    b = Proposal({"precursor_volume_ul": 10.0, "solvent_volume_ul": 39.0}, "calculation", 0.05, "t")
    c = Proposal({"precursor_volume_ul": 10.0, "solvent_volume_ul": 39.0}, "full", 1.0, "t")
    X = opt._inputs([a, b, c])
    assert torch.equal(X[0], X[1]) and not torch.equal(X[1, :2], X[2, :2])


def test_ignores_is_validated() -> None:
    from lab.spec import SpecError

    with pytest.raises(SpecError, match="ignores 'anneal_time_min', which is not a parameter"):
        data = mf_data()
        data["fidelities"][0]["ignores"] = ["anneal_time_min"]
        parse_campaign(data)
    with pytest.raises(SpecError, match="target fidelity 'full' ignores solvent_volume_ul"):
        data = mf_data()
        data["fidelities"][2]["ignores"] = ["solvent_volume_ul"]
        parse_campaign(data)
    with pytest.raises(SpecError, match="only continuous parameters can be ignored"):
        data = mf_data()
        data["parameters"].append({"name": "m", "type": "categorical", "choices": ["a", "b"]})
        data["fidelities"][0]["ignores"] = ["m"]
        parse_campaign(data)


def test_ar1_model_with_a_blind_fidelity_relates_it_to_the_target_whatever_the_blind_column():
    """``mf_ar1`` with a fidelity that ignores a parameter: the covariance between that
    fidelity and the target does not depend on the ignored column, while the target's own
    covariance does."""
    from lab.optimize._models import get_model

    spec = parse_campaign(_blind_data())
    fids = FidelitySet(spec)
    assert fids.blind == {0: [1]}
    kind = get_model("mf_ar1")
    calc, full = kind.fidelity_value(fids, 0), kind.fidelity_value(fids, 2)
    X = torch.tensor(
        [[0.2, 0.5, calc], [0.7, 0.5, calc], [0.2, 0.1, full], [0.4, 0.9, full]],
        dtype=torch.double,
    )
    Y = torch.tensor([[1.0], [2.0], [1.5], [0.5]], dtype=torch.double)
    model = kind.build(X, Y, fids)
    a = torch.tensor([[0.3, 0.5, calc]], dtype=torch.double)
    b = torch.tensor([[0.3, 0.0, full], [0.3, 1.0, full]], dtype=torch.double)
    with torch.no_grad():
        k_cross = model.covar_module(a, b).to_dense()
        k_target = model.covar_module(b[:1], b).to_dense()
    assert k_cross[0, 0] == pytest.approx(float(k_cross[0, 1]), rel=1e-9)
    assert float(k_target[0, 0]) > float(k_target[0, 1]) + 1e-6


def test_log_scale_parameter_is_spread_and_encoded_by_ratio() -> None:
    data = mf_data()
    data["parameters"][0].update(low=0.5, high=50.0, scale="log")
    spec = parse_campaign(data)
    space = DesignSpace(spec)
    x = space.encode({"precursor_volume_ul": 5.0, "solvent_volume_ul": 20.0})
    assert float(x[0]) == pytest.approx(0.5) and float(x[1]) == pytest.approx(0.5)
    assert space.decode(x)["precursor_volume_ul"] == pytest.approx(5.0)
    values = [p["precursor_volume_ul"] for p in space.sobol(64, seed=0)]
    assert 0.3 < sum(v < 5.0 for v in values) / 64 < 0.7  # half below the geometric middle
    # the safety cap of a log-scaled volume is still a hard bound
    data["safety"] = {"max_dispense_volume_ul": 60.0}
    data["parameters"][0].update(high=60.0)
    capped = DesignSpace(parse_campaign(data))
    assert capped.decode(torch.ones(capped.dim))["precursor_volume_ul"] == pytest.approx(60.0)


def test_log_scale_needs_a_positive_low_bound() -> None:
    from lab.spec import SpecError

    data = mf_data()
    data["parameters"][1]["scale"] = "log"  # solvent volume starts at 0
    with pytest.raises(SpecError, match="scale: log needs a positive low bound"):
        parse_campaign(data)


def test_completion_fills_only_what_each_blind_fidelity_did_not_see() -> None:
    """Two cheap fidelities blind to different parameters: completing a design seen only by
    one of them changes the parameter it ignored and keeps the one it measured."""
    data = _blind_data()
    data["fidelities"][1]["ignores"] = ["precursor_volume_ul"]
    opt = Optimizer(parse_campaign(data), seed=2, fidelity_gate=False, **FAST)
    run(opt, 12)
    fit = opt._fit_general()
    X = opt._project(fit.X)
    rows = [r for r, o in enumerate(fit.obs) if o.proposal.fidelity != "full"]
    done = opt._complete(fit, X, rows)
    for r in rows:
        kept = 0 if fit.obs[r].proposal.fidelity == "calculation" else 1
        assert done[r, kept] == X[r, kept]
