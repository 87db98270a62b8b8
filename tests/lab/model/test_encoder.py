"""GNN encoder: shapes, region readout, pretraining and its cache."""

from __future__ import annotations

import time

import torch

from lab.model import EncoderConfig, PairEncoder, PretrainConfig, build_pair_table, pair_graphs
from lab.model._pretrain import _pair_index
from tests.lab.model.conftest import MODS, PARTS, calc_labels


def test_interface_and_bulk_modes_share_the_code_path() -> None:
    pairs = _pair_index(len(MODS), len(PARTS))
    for mode in ("interface", "bulk"):
        cfg = EncoderConfig(mode=mode, hidden=16, layers=2, embedding_dim=4)
        enc = PairEncoder(cfg)
        graphs = pair_graphs(mode, MODS, PARTS, cfg.cutoff)
        emb = enc(graphs, pairs)
        assert emb.shape == (len(MODS) * len(PARTS), 4)
        emb.sum().backward()
        assert enc.graph.z_emb.weight.grad is not None
        batch = next(iter(graphs.values()))
        regions = enc.graph(batch)
        assert regions.shape == (batch.num_graphs, 6, 16)
        if mode == "interface":
            assert torch.all(regions[:, 5] == 0)  # no "bulk" region in a stack
            assert torch.all(regions[:, :5].abs().sum(-1) > 0)
        else:
            assert torch.all(regions[:, :5] == 0)  # one region per crystal


def test_pretraining_learns_and_is_cached(tmp_path) -> None:
    cfg = EncoderConfig(mode="interface", hidden=16, layers=2, embedding_dim=4)
    labels = calc_labels()
    short = build_pair_table(
        cfg, MODS, PARTS, labels, pretrain=PretrainConfig(epochs=2), cache_dir=tmp_path
    )
    losses: list[float] = []
    trained = build_pair_table(
        cfg,
        MODS,
        PARTS,
        labels,
        pretrain=PretrainConfig(epochs=60),
        cache_dir=tmp_path,
        progress=lambda e, n, loss: losses.append(loss),
    )
    assert len(losses) == 60 and losses[-1] < 0.5 * losses[0]
    assert trained.info["train_rmse"] < short.info["train_rmse"]
    assert trained.embeddings.shape == (len(MODS), len(PARTS), 4)
    t0 = time.perf_counter()
    again = build_pair_table(
        cfg, MODS, PARTS, labels, pretrain=PretrainConfig(epochs=60), cache_dir=tmp_path
    )
    assert time.perf_counter() - t0 < 1.0
    assert torch.equal(again.embeddings, trained.embeddings)
    assert again.info["key"] == trained.info["key"]


def test_no_pretraining_is_seeded_random_init(tmp_path) -> None:
    cfg = EncoderConfig(mode="bulk", hidden=16, layers=2, embedding_dim=4)
    a = build_pair_table(cfg, MODS, PARTS, None, seed=1, cache_dir=tmp_path / "a")
    b = build_pair_table(cfg, MODS, PARTS, None, seed=1, cache_dir=tmp_path / "b")
    c = build_pair_table(cfg, MODS, PARTS, None, seed=2, cache_dir=tmp_path / "c")
    assert torch.allclose(a.embeddings, b.embeddings)
    assert not torch.allclose(a.embeddings, c.embeddings)
    assert a.info["pretrained"] is False
