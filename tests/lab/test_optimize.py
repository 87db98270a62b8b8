"""The ask/tell optimiser."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lab.errors import LabError
from lab.optimize import Optimizer, Proposal, acquisition_names, register_acquisition
from lab.optimize._space import DesignSpace
from lab.spec import load_campaign, parse_campaign

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spec():
    return load_campaign(ROOT / "campaigns" / "demo.yaml")


def bowl(p: dict) -> float:
    """A smooth positive objective with its minimum at (15, 20, 100)."""
    return (
        5.0
        + (p["precursor_volume_ul"] - 15) ** 2 / 10
        + (p["solvent_volume_ul"] - 20) ** 2 / 20
        + (p["precursor_rate_ul_min"] - 100) ** 2 / 2000
    )


def test_initial_design_is_space_filling_and_in_bounds(spec) -> None:
    opt = Optimizer(spec, seed=3)
    batch = opt.ask(4)
    assert [p.strategy for p in batch] == ["initial_design"] * 4
    for prop in batch:
        spec.check_params(prop.params)
        assert prop.fidelity == "full" and prop.cost == 1.0
    vols = sorted(p.params["precursor_volume_ul"] for p in batch)
    # one point in each quarter of the range (Sobol balance)
    assert [int((v - 2) / 9.5) for v in vols] == [0, 1, 2, 3]
    assert Optimizer(spec, seed=3).ask(4)[0].params == batch[0].params


def test_closed_loop_improves_on_initial_design(spec) -> None:
    opt = Optimizer(spec, seed=0, num_restarts=4, raw_samples=128)
    values = []
    for _ in range(12):
        (p,) = opt.ask(1)
        spec.check_params(p.params)
        values.append(bowl(p.params))
        opt.tell(p, values[-1])
    assert min(values[4:]) < min(values[:4])
    model_props = [
        o for o in opt.state_dict()["observations"] if o["proposal"]["strategy"] == "qlognei"
    ]
    assert len(model_props) == 8
    assert all(len(o["proposal"]["model_version"]) == 12 for o in model_props)
    best = opt.recommend()
    assert bowl(best.params) < 12.0


def test_pending_points_are_not_repeated(spec) -> None:
    opt = Optimizer(spec, seed=1, num_restarts=4, raw_samples=128)
    for p in opt.ask(4):
        opt.tell(p, bowl(p.params))
    a, b = opt.ask(2)
    xa = DesignSpace(spec).encode(a.params)
    xb = DesignSpace(spec).encode(b.params)
    assert torch.linalg.norm(xa - xb) > 1e-3


def test_state_dict_round_trip_resumes(spec) -> None:
    opt = Optimizer(spec, seed=2)
    first = opt.ask(3)
    for p in first[:2]:
        opt.tell(p, bowl(p.params))
    opt.tell_failed(first[2], "pump stalled")
    clone = Optimizer.from_state_dict(spec, opt.state_dict())
    assert clone.state_dict() == opt.state_dict()
    assert clone.ask(1)[0].params == opt.ask(1)[0].params


def test_replayed_history_continues_the_initial_design(spec) -> None:
    opt = Optimizer(spec, seed=5)
    done = opt.ask(2)
    fresh = Optimizer(spec, seed=5)
    for p in done:
        fresh.tell(Proposal(**p.to_dict()), bowl(p.params))
    assert fresh.ask(1)[0].params == opt.ask(1)[0].params


def test_tell_rejects_bad_values(spec) -> None:
    opt = Optimizer(spec)
    (p,) = opt.ask(1)
    with pytest.raises(LabError, match="not finite"):
        opt.tell(p, float("nan"))
    with pytest.raises(LabError, match="log_transform"):
        opt.tell(p, -1.0)
    with pytest.raises(LabError, match="nothing observed"):
        opt.recommend()


def test_registry_refuses_duplicates_and_unknown_names(spec) -> None:
    assert "qlognei" in acquisition_names()
    with pytest.raises(LabError, match="already registered"):
        register_acquisition("qlognei")(lambda *a: None)
    with pytest.raises(LabError, match="unknown acquisition 'nope'"):
        Optimizer(spec, acquisition="nope")


def test_categorical_space_round_trip() -> None:
    data = {
        "name": "cat",
        "interface": {"substrate": "Li", "other_phase": "LLZO"},
        "parameters": [
            {"name": "modifier", "type": "categorical", "choices": ["LiF", "Al2O3", "ZnO"]},
            {"name": "thickness_nm", "type": "continuous", "low": 1, "high": 50, "unit": "nm"},
        ],
        "objective": {"name": "r", "unit": "ohm", "direction": "minimize"},
        "fidelities": [{"name": "full", "cost": 1, "route": "calculation"}],
        "budget": 10,
        "initial_design": 3,
    }
    spec = parse_campaign(data)
    space = DesignSpace(spec)
    assert space.dim == 4
    params = {"modifier": "ZnO", "thickness_nm": 25.5}
    assert space.decode(space.encode(params)) == params
    opt = Optimizer(spec, seed=0, num_restarts=2, raw_samples=32)
    init = opt.ask(3)
    assert {p.params["modifier"] for p in init} == {"LiF", "Al2O3", "ZnO"}
    for p in init:
        opt.tell(p, 1.0 + p.params["thickness_nm"] / 10 + (p.params["modifier"] == "ZnO"))
    (nxt,) = opt.ask(1)
    assert nxt.strategy == "qlognei"
    spec.check_params(nxt.params)


def test_plain_gp_priors_scale_with_dimension_and_it_interpolates() -> None:
    """The single-fidelity GP: Matern-5/2, length-scale prior mode sqrt(d) e^(sqrt2 - 3),
    low-noise prior; fitted on a smooth noise-free function it nearly interpolates."""
    import math

    from gpytorch.kernels import MaternKernel

    from lab.optimize._models import fit_model, plain_gp

    gen = torch.Generator().manual_seed(0)
    for d in (2, 8):
        X = torch.rand(20, d, generator=gen, dtype=torch.double)
        model = plain_gp(X, X.sum(-1, keepdim=True))
        kernel = model.covar_module
        assert isinstance(kernel, MaternKernel) and kernel.nu == 2.5
        mode = float(kernel.lengthscale_prior.mode)
        assert mode == pytest.approx(math.sqrt(d) * math.exp(math.sqrt(2.0) - 3.0))
        assert float(model.likelihood.noise_covar.noise_prior.mode) == pytest.approx(math.exp(-5.0))
    X = torch.rand(30, 3, generator=gen, dtype=torch.double)
    Y = torch.sin(3 * X).sum(-1, keepdim=True)
    model = fit_model(plain_gp(X, Y))
    with torch.no_grad():
        mean = model.posterior(X).mean
    assert float((mean - Y).abs().max()) < 0.05 * float(Y.std())
