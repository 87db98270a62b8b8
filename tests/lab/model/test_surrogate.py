"""The surrogate: BoTorch Model API, multi-fidelity fit, speed, calibration and snapshots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.acquisition import qLogExpectedImprovement
from botorch.sampling import SobolQMCNormalSampler

from lab.materials import electrolytes, modifiers
from lab.model import KINDS, RAW_COLUMNS, Surrogate, SurrogateConfig
from lab.model._encoder import EncoderConfig
from lab.model._pretrain import PretrainConfig
from tests.lab.model.conftest import MODS, PARTS, calc_labels, draw

SMALL = EncoderConfig(hidden=16, layers=2, embedding_dim=4)


@pytest.fixture(scope="module")
def fitted() -> Surrogate:
    s = Surrogate(SurrogateConfig("descriptor_gp"), MODS, PARTS).prepare()
    return s.fit(draw(40, "full", 1) + draw(60, "screening", 2) + draw(24, "calculation", 3))


def test_model_api_works_with_acquisition_functions(fitted: Surrogate) -> None:
    model = fitted.model
    X = fitted.encode(draw(6, "full", 4)).reshape(3, 2, len(RAW_COLUMNS))  # b x q x d
    post = model.posterior(X)
    assert post.mean.shape == (3, 2, 1)
    assert model.posterior(X[..., :5]).mean.shape == (3, 2, 1)  # target fidelity implied
    best = float(fitted.model.raw_train_Y.max())
    acq = qLogExpectedImprovement(
        model, best_f=best, sampler=SobolQMCNormalSampler(torch.Size([32]))
    )
    X = X.clone().requires_grad_(True)
    value = acq(X)
    assert value.shape == (3,)
    value.sum().backward()
    assert X.grad[..., 2:5].abs().sum() > 0  # differentiable in the process parameters
    fantasy = model.fantasize(X.detach()[:1], SobolQMCNormalSampler(torch.Size([4])))
    assert fantasy.posterior(X.detach()[:1]).mean.shape[0] == 4


def test_fidelities_are_distinct_tasks(fitted: Surrogate) -> None:
    params = draw(20, "full", 5)
    full, _ = fitted.predict(params, "full")
    calc, _ = fitted.predict(params, "calculation")
    assert not np.allclose(full, calc)
    noise = fitted.model.noise_by_fidelity()
    assert noise.shape == (3,)


def test_fit_and_predict_300_observations() -> None:
    # Speed is measured by benchmarks/surrogate.py (details.json: fit_predict_seconds), not
    # asserted here.
    mods, parts = modifiers(), electrolytes()
    obs = (
        draw(100, "full", 6, mods, parts)
        + draw(150, "screening", 7, mods, parts)
        + draw(50, "calculation", 8, mods, parts)
    )
    s = Surrogate(SurrogateConfig("descriptor_gp"), mods, parts).prepare()
    s.fit(obs)
    test = draw(200, "full", 9, mods, parts)
    mean, std = s.predict(test)
    y = np.log10([o["value"] for o in test])
    rmse = float(np.sqrt(np.mean((mean - y) ** 2)))
    assert rmse < 0.7 * float(np.std(y))  # learns something
    coverage = float(np.mean(np.abs(y - mean) <= 1.645 * std))
    assert 0.7 < coverage <= 1.0


@pytest.mark.parametrize("kind", ["interface_gnn", "bulk_gnn", "interface_gnn_nopretrain"])
def test_gnn_kinds(kind: str, tmp_path) -> None:
    cfg = SurrogateConfig(kind, encoder=SMALL, pretrain=PretrainConfig(epochs=20))
    s = Surrogate(cfg, MODS, PARTS, cache_dir=tmp_path)
    if s.needs_labels:
        with pytest.raises(ValueError, match="labels"):
            s.prepare()
    s.prepare(calc_labels())
    extra = 2 if kind.startswith("interface") else 0  # strain (mismatch) features
    assert s.table.shape == (len(MODS), len(PARTS), 4 + extra)
    s.fit(draw(30, "full", 10) + draw(30, "screening", 11))
    mean, std = s.predict(draw(5, "full", 12))
    assert mean.shape == std.shape == (5,) and (std > 0).all()


def test_snapshot_round_trip_and_version(fitted: Surrogate, tmp_path) -> None:
    version = fitted.save(tmp_path)
    assert len(version) == 16 and (tmp_path / f"surrogate-{version}.pt").exists()
    loaded = Surrogate.load(tmp_path / f"surrogate-{version}.pt")
    assert loaded.version == version
    params = draw(10, "full", 13)
    assert np.allclose(loaded.predict(params)[0], fitted.predict(params)[0])
    other = Surrogate(SurrogateConfig("descriptor_gp"), MODS, PARTS).prepare()
    other.fit(draw(40, "full", 1) + draw(59, "screening", 2))
    assert other.version != version


def _mll(s: Surrogate) -> float:
    from gpytorch.mlls import ExactMarginalLogLikelihood

    gp = s.model.gp
    gp.train()
    with torch.no_grad():
        mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
        value = float(mll(gp(*gp.train_inputs), gp.train_targets, *gp.train_inputs))
    gp.eval()
    return value


def test_warm_start_copies_hyperparameters_not_data(fitted: Surrogate) -> None:
    obs = draw(30, "full", 11) + draw(40, "screening", 12) + draw(24, "calculation", 3)
    fresh = Surrogate(SurrogateConfig("descriptor_gp"), MODS, PARTS).prepare()
    fresh.fit(obs, maxiter=1)
    fresh.model.load_hyperparameters(fitted.model.hyperparameters())
    for name, value in fitted.model.hyperparameters().items():
        assert torch.equal(dict(fresh.model.gp.named_parameters())[name], value)
    assert fresh.model.raw_train_X.shape[0] == len(obs)  # its own data...
    stdvs = (fresh.model.gp.outcome_transform.stdvs, fitted.model.gp.outcome_transform.stdvs)
    assert not torch.equal(*stdvs)  # ...and its own outcome standardisation

    data = draw(40, "full", 1) + draw(60, "screening", 2) + draw(24, "calculation", 3)
    cold = Surrogate(SurrogateConfig("descriptor_gp"), MODS, PARTS).prepare().fit(data, maxiter=5)
    warm = Surrogate(SurrogateConfig("descriptor_gp"), MODS, PARTS).prepare()
    warm.fit(data, warm_start=fitted, maxiter=5)
    assert _mll(warm) >= _mll(fitted) - 1e-6 > _mll(cold)
    with pytest.raises(RuntimeError, match="fit"):
        warm.fit(data, warm_start=Surrogate(SurrogateConfig("descriptor_gp"), MODS, PARTS))


def test_invalid_use() -> None:
    with pytest.raises(ValueError, match="kind"):
        Surrogate(SurrogateConfig("magic"), MODS, PARTS)
    s = Surrogate(SurrogateConfig("descriptor_gp"), MODS, PARTS)
    with pytest.raises(RuntimeError, match="fit"):
        s.predict(draw(1, "full", 0))
    with pytest.raises(KeyError):
        s.encode([{"modifier": "Unobtainium", "partner": "LLZO", "thickness_nm": 1.0}])
    assert set(KINDS) >= {"descriptor_gp", "bulk_gnn", "interface_gnn"}
