"""Surrogate ablation: which pair representation predicts an unseen interlayer best?

Data come from the simulated world's ground truth (default
``simulators.truths_interface:interlayer_asr``; any ``module:function`` with
``--truth``). Per seed the benchmark draws

* cheap-fidelity labels (``calculation``) for every (modifier, partner) pair of the library at
  four thicknesses: they pretrain the GNN encoders, and two thicknesses per pair join every GP's
  training set (a calculation is affordable for the whole library before any experiment);
* measured observations at random parameters (``full`` and ``screening``, 1:2);
* held-out test points at the target fidelity (``full``) for every modifier.

Leave-one-modifier-out (LOMO): for each modifier, every surrogate is fitted without that
modifier's measurements and predicts its test points (all partners). Leave-one-pair-out (LOPO):
the same for a sample of (modifier, partner) pairs. Surrogates (``lab.model.KINDS``) share the
multi-fidelity GP and differ only in the pair representation: ``descriptor_gp`` (composition,
no structure), ``bulk_gnn`` (the two bulk crystals, joined), ``interface_gnn`` (the interface
stack), and the two GNNs without pretraining. Metrics on ``log10`` of the objective: RMSE,
negative log predictive density (nats, Gaussian predictive with the fidelity's noise) and the
coverage of the central 90 % interval; each is pooled over all test points of all folds of a
seed, then averaged over seeds.

Fits are warm-started without leakage: per seed and surrogate the modifiers are split into five
groups, a GP is fitted (100 L-BFGS-B iterations from the defaults) to the calculation points and
the measurements of the other groups' modifiers, and each fold of a group (LOMO, and LOPO by its
pair's modifier) starts from those hyperparameters and runs 30 iterations on its own training
set. The group fit never sees the held-out modifier's measurements. On seed 0 this reaches, on
average, a higher marginal likelihood than 100 iterations from the defaults at a quarter of the
time per fold; neither is converged (that takes over a thousand), and the held-out metrics move
with where the optimiser stops about as much as between the two protocols (chiefly the Cu fold,
see ``docs/decisions/0004``). ``--cold`` runs every fold from the defaults for 100 iterations
instead. Cold fits start from random task covariances (gpytorch's ``IndexKernel``), so torch is
seeded per fit and a rerun gives the same numbers.

Usage::

    python benchmarks/surrogate.py --out DIR [--full] [--quick] [--cold] [--seeds N]
                                   [--workers N] [--truth module:function] [--kinds a,b]

``--kinds`` picks surrogates; ``oracle`` (not in the default set) is a reference that no
surrogate can have: the truth's own property table as the pair representation under the same
GP, i.e. how well perfect material knowledge predicts an unseen interlayer from these data.

Writes ``DIR/summary.json`` (LOMO, shaped ``{"rmse": {name: value}, "nlpd": {...},
"coverage90": {...}}``), ``DIR/folds.csv`` (every fold of both splits), ``DIR/details.json``
(settings, LOPO summary, ratios against the targets, timings) and ``DIR/parity.png`` (parity
and calibration). The default (3 seeds: 435 folds, 75 group fits, 6 encoder pretrainings) took
14.8 min on the 2-core development machine with other jobs running (load 2.7-5.0), of which
3.3 min was pretraining the two interface encoders that were not cached yet (about 5 min when
none is; cached for reruns); a fold took 2.0 s and a group fit 5.8 s on average. At the same
load one seed took 3.8 min warm and 9.2 min cold (7.3 s per cold fold): the cold default is about
27 min plus pretraining, and took 46 min at load 5-7. ``--workers`` sets the parallel
processes. ``--full`` runs 10 seeds and every pair in LOPO; ``--quick`` runs a small slice of the
library (about 40 s; used by the test suite).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_TRUTH = "simulators.truths_interface:interlayer_asr"
THICKNESS_NM = (0.5, 50.0)
TEMPERATURE_C = (25.0, 400.0)
TIME_MIN = (0.0, 120.0)
PRETRAIN_THICKNESSES = (0.5, 2.0, 8.0, 30.0)
GP_CALC_THICKNESSES = (1.0, 10.0)


@dataclass
class Settings:
    """Benchmark size.

    Attributes:
        seeds: Number of seeds (data draws and encoder initialisations).
        n_full: Measured observations at the target fidelity per seed.
        n_screening: Measured observations at the screening fidelity per seed.
        n_test: Test points per modifier (LOMO) or per pair (LOPO).
        lopo_pairs: Pairs held out in LOPO per seed (None: all).
        modifiers: Library slice (None: all modifiers).
        partners: Library slice (None: all electrolytes).
        hidden: GNN width.
        layers: GNN layers.
        epochs: Pretraining epochs.
        workers: Processes fitting GPs in parallel.
        warm_groups: Modifier groups of the warm start (0: every fold starts cold).
        fold_maxiter: L-BFGS-B iterations of a warm-started fold.
        base_maxiter: L-BFGS-B iterations of a cold fit (a group's base, or a cold fold).
        kinds: Surrogate kinds (empty: all of ``lab.model.KINDS``).
    """

    seeds: int = 3
    n_full: int = 80
    n_screening: int = 160
    n_test: int = 24
    lopo_pairs: int | None = 4
    modifiers: list[str] | None = None
    partners: list[str] | None = None
    hidden: int = 32
    layers: int = 3
    epochs: int = 150
    workers: int = 2
    warm_groups: int = 5
    fold_maxiter: int = 30
    base_maxiter: int = 100
    kinds: list[str] = field(default_factory=list)


def load_truth(spec: str) -> Callable[[dict, str, np.random.Generator], float]:
    """Import ``module:function``."""
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--truth must be module:function, got {spec!r}")
    return getattr(importlib.import_module(module), name)


def random_params(rng: np.random.Generator, modifiers: list[str], partners: list[str]) -> dict:
    """One uniformly drawn parameter set (thickness log-uniform)."""
    return {
        "modifier": modifiers[rng.integers(len(modifiers))],
        "partner": partners[rng.integers(len(partners))],
        "thickness_nm": float(10 ** rng.uniform(*np.log10(THICKNESS_NM))),
        "anneal_temperature_c": float(rng.uniform(*TEMPERATURE_C)),
        "anneal_time_min": float(rng.uniform(*TIME_MIN)),
    }


def draw_data(truth, seed: int, modifiers: list[str], partners: list[str], s: Settings) -> dict:
    """Pretraining labels, GP calculation points, measurements and test points of a seed."""
    rng = np.random.default_rng(1000 + seed)
    labels = []
    calc_obs = []
    for m in modifiers:
        for p in partners:
            for h in PRETRAIN_THICKNESSES:
                params = {"modifier": m, "partner": p, "thickness_nm": h}
                labels.append((m, p, h, float(truth(params, "calculation", rng))))
            for h in GP_CALC_THICKNESSES:
                params = {"modifier": m, "partner": p, "thickness_nm": h}
                value = float(truth(params, "calculation", rng))
                calc_obs.append({**params, "fidelity": "calculation", "value": value})
    measured = []
    for fid, n in (("full", s.n_full), ("screening", s.n_screening)):
        for _ in range(n):
            params = random_params(rng, modifiers, partners)
            measured.append({**params, "fidelity": fid, "value": float(truth(params, fid, rng))})
    test_lomo = {
        m: [_measure(truth, random_params(rng, [m], partners), rng) for _ in range(s.n_test)]
        for m in modifiers
    }
    pairs = [(m, p) for m in modifiers for p in partners]
    if s.lopo_pairs is not None and s.lopo_pairs < len(pairs):
        pick = rng.choice(len(pairs), size=s.lopo_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(pick)]
    test_lopo = {
        pair: [
            _measure(truth, random_params(rng, [pair[0]], [pair[1]]), rng) for _ in range(s.n_test)
        ]
        for pair in pairs
    }
    return {
        "labels": labels,
        "calc": calc_obs,
        "measured": measured,
        "lomo": test_lomo,
        "lopo": test_lopo,
    }


ORACLE = "oracle"
"""Diagnostic kind (``--kinds oracle``): the truth's own property table as the representation."""


def oracle_table(modifiers: list[str], partners: list[str]):
    """Pair representation from the reference truth's property table (an upper reference).

    No surrogate can have it: it is what the world is computed from (every property of both
    phases, and the pair quantities the truth derives from them: reaction driving force,
    misfits against both neighbours, Girifalco-Good parameter, anion change). Under the same
    GP it shows how well *perfect* material knowledge predicts an unseen interlayer from the
    benchmark's data, i.e. the floor a representation can reach.

    Returns:
        ``n_modifiers x n_partners x d`` float64 tensor.
    """
    import torch

    from simulators import truths_interface as t

    bonds, anions = ("metal", "ionic", "covalent"), ("O", "N", "F", "S", "Cl", None)
    rows = []
    for m in modifiers:
        mod = t.MODIFIERS[m]
        for p in partners:
            el = t.ELECTROLYTES[p]
            rows.append(
                [
                    mod.a,
                    mod.gamma,
                    mod.v_red,
                    mod.v_ox,
                    math.log10(mod.sigma),
                    mod.chi_e,
                    mod.dv,
                    mod.t_melt,
                    mod.chalco,
                    mod.eps_r,
                    *(float(mod.bonding == b) for b in bonds),
                    *(float(mod.anion == a) for a in anions),
                    el.a,
                    el.gamma,
                    el.v_red,
                    el.v_ox,
                    math.log10(el.sigma),
                    math.log10(el.kappa_red),
                    math.log10(el.r_surface),
                    float(el.anion == "S"),
                    t.reaction_driving_force(mod, el),
                    t.misfit(mod.a, el.a),
                    t.misfit(t.A_LI, mod.a),
                    t._phi(mod.bonding, mod.anion, "ionic", el.anion),
                    t._anion_mismatch(mod.anion, el.anion),
                ]
            )
    x = torch.tensor(rows, dtype=torch.float64)
    keep = x.std(0) > 1e-12  # constant columns (one partner) carry nothing
    return x[:, keep].view(len(modifiers), len(partners), -1)


def _measure(truth, params: dict, rng: np.random.Generator) -> dict:
    return {**params, "fidelity": "full", "value": float(truth(params, "full", rng))}


def _fit_unit(unit: dict) -> list[dict]:
    """Fit and score every fold of one group of one seed and kind (runs in a worker process).

    With a warm start, a GP is first fitted cold to the group's base data (the calculation
    points and the measurements of the modifiers outside the group), and each fold's GP starts
    from its hyperparameters; the base never sees a held-out modifier's measurements. A cold
    GP starts from random task covariances (gpytorch's ``IndexKernel``), so torch's generator
    is seeded from the fold's (or base's) name: every run gives the same numbers.
    """
    import torch

    from lab.model import Surrogate, SurrogateConfig

    torch.set_num_threads(1)

    def surrogate(*name: Any) -> Surrogate:
        torch.manual_seed(
            zlib.crc32("|".join(map(str, (unit["seed"], unit["kind"], *name))).encode())
        )
        kind = "descriptor_gp" if unit["kind"] == ORACLE else unit["kind"]  # table set below
        s = Surrogate(SurrogateConfig(kind), unit["modifiers"], unit["partners"])
        s.table = unit["table"]
        return s

    warm, base_seconds = None, None
    if unit["base_train"] is not None:
        t0 = time.perf_counter()
        base = surrogate("base", unit["group"]).fit(
            unit["base_train"], maxiter=unit["base_maxiter"]
        )
        warm, base_seconds = base.model.hyperparameters(), time.perf_counter() - t0
    out = []
    for fold in unit["folds"]:
        s = surrogate(fold["split"], fold["held_out"])
        t0 = time.perf_counter()
        s.fit(fold["train"], warm_start=warm, maxiter=unit["maxiter"])
        mean, std = s.predict(fold["test"])
        seconds = time.perf_counter() - t0
        y = np.log10([o["value"] for o in fold["test"]])
        out.append(
            {
                "seed": unit["seed"],
                "split": fold["split"],
                "held_out": fold["held_out"],
                "kind": unit["kind"],
                "group": fold["group"],
                "order": fold["order"],
                "n_train": len(fold["train"]),
                "n_test": len(y),
                "y": y.tolist(),
                "mean": mean.tolist(),
                "std": std.tolist(),
                "fit_seconds": seconds,
                "base_seconds": base_seconds,
            }
        )
    return out


def scores(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """RMSE, NLPD (nats) and 90 % coverage of Gaussian predictions."""
    std = np.maximum(std, 1e-9)
    nlpd = 0.5 * np.log(2 * math.pi * std**2) + 0.5 * ((y - mean) / std) ** 2
    return {
        "rmse": float(np.sqrt(np.mean((y - mean) ** 2))),
        "nlpd": float(np.mean(nlpd)),
        "coverage90": float(np.mean(np.abs(y - mean) <= 1.6448536 * std)),
    }


def build_tables(
    seed: int, data: dict, modifiers: list[str], partners: list[str], s: Settings, log
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pair representation of every surrogate kind for one seed (pretraining as needed)."""
    from lab.model import EncoderConfig, PretrainConfig, Surrogate, SurrogateConfig

    tables, info = {}, {}
    for kind in s.kinds:
        if kind == ORACLE:
            tables[kind] = oracle_table(modifiers, partners)
            info[kind] = {"seconds": 0.0, "dim": int(tables[kind].shape[-1])}
            continue
        cfg = SurrogateConfig(
            kind,
            encoder=EncoderConfig(hidden=s.hidden, layers=s.layers),
            pretrain=PretrainConfig(epochs=s.epochs),
            seed=seed,
        )
        t0 = time.perf_counter()
        sur = Surrogate(cfg, modifiers, partners).prepare(data["labels"] if "gnn" in kind else None)
        tables[kind] = sur.table
        info[kind] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "train_rmse": sur.table_info.get("train_rmse"),
            "key": sur.table_info.get("key"),
            "dim": int(sur.table.shape[-1]),
        }
        log(f"  seed {seed}: {kind} representation ({info[kind]['seconds']} s)")
    return tables, info


def run(out: Path, s: Settings, truth_spec: str, log=print) -> dict:
    """Run the benchmark and write its outputs; returns the summary."""
    from lab.materials import electrolytes
    from lab.materials import modifiers as all_modifiers
    from lab.model import KINDS

    t_start = time.perf_counter()
    truth = load_truth(truth_spec)
    mods = s.modifiers or all_modifiers()
    parts = s.partners or electrolytes()
    s.kinds = s.kinds or list(KINDS)
    out.mkdir(parents=True, exist_ok=True)
    units, table_info = [], {}
    warm = s.warm_groups > 0
    n_groups = min(s.warm_groups if warm else 5, len(mods))
    group = {m: i % n_groups for i, m in enumerate(mods)}
    for seed in range(s.seeds):
        data = draw_data(truth, seed, mods, parts, s)
        tables, table_info[seed] = build_tables(seed, data, mods, parts, s, log)
        folds = [
            {
                "split": "lomo",
                "held_out": m,
                "group": group[m],
                "train": [o for o in data["measured"] if o["modifier"] != m] + data["calc"],
                "test": test,
            }
            for m, test in data["lomo"].items()
        ] + [
            {
                "split": "lopo",
                "held_out": f"{m}|{p}",
                "group": group[m],
                "train": [o for o in data["measured"] if (o["modifier"], o["partner"]) != (m, p)]
                + data["calc"],
                "test": test,
            }
            for (m, p), test in data["lopo"].items()
        ]
        for order, fold in enumerate(folds):
            fold["order"] = order
        for kind in s.kinds:
            for g in range(n_groups):
                if not any(f["group"] == g for f in folds):
                    continue
                base = [o for o in data["measured"] if group[o["modifier"]] != g] + data["calc"]
                units.append(
                    {
                        "seed": seed,
                        "kind": kind,
                        "group": g,
                        "table": tables[kind],
                        "modifiers": mods,
                        "partners": parts,
                        "folds": [f for f in folds if f["group"] == g],
                        "base_train": base if warm else None,
                        "base_maxiter": s.base_maxiter,
                        "maxiter": s.fold_maxiter if warm else s.base_maxiter,
                    }
                )
    n_folds = sum(len(u["folds"]) for u in units)
    protocol = (
        f"warm start from {n_groups} group fits, {s.fold_maxiter} iterations per fold"
        if warm
        else f"cold start, {s.base_maxiter} iterations per fold"
    )
    log(f"fitting {n_folds} folds ({protocol}) with {s.workers} worker(s)")
    results, done, reported = [], 0, 0
    if s.workers > 1:
        pool = ProcessPoolExecutor(s.workers, mp_context=get_context("spawn"))
        fitted = pool.map(_fit_unit, units)
    else:
        pool, fitted = None, map(_fit_unit, units)
    try:
        for r in fitted:
            results.extend(r)
            done += len(r)
            if done - reported >= 50 or done == n_folds:
                reported = done
                log(f"  {done}/{n_folds} folds ({time.perf_counter() - t_start:.0f} s)")
    finally:
        if pool is not None:
            pool.shutdown()
    kind_order = {k: i for i, k in enumerate(s.kinds)}
    results.sort(key=lambda r: (r["seed"], r["split"], kind_order[r["kind"]], r["order"]))
    return write_outputs(
        out, s, truth_spec, results, table_info, time.perf_counter() - t_start, log
    )


def aggregate(results: list[dict], split: str, kinds: list[str]) -> dict[str, dict[str, float]]:
    """Metrics pooled over the folds of each seed, averaged over seeds."""
    summary: dict[str, dict[str, float]] = {"rmse": {}, "nlpd": {}, "coverage90": {}}
    for kind in kinds:
        per_seed = []
        for seed in sorted({r["seed"] for r in results}):
            rows = [r for r in results if (r["kind"], r["split"], r["seed"]) == (kind, split, seed)]
            if not rows:
                continue
            y, mu, sd = (np.concatenate([r[k] for r in rows]) for k in ("y", "mean", "std"))
            per_seed.append(scores(y, mu, sd))
        for metric in summary:
            summary[metric][kind] = round(float(np.mean([p[metric] for p in per_seed])), 4)
    return summary


def write_outputs(out, s, truth_spec, results, table_info, seconds, log) -> dict:
    """summary.json, folds.csv, details.json and parity.png."""
    kinds = s.kinds
    summary = aggregate(results, "lomo", kinds)
    lopo = aggregate(results, "lopo", kinds)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out / "folds.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "seed",
                "split",
                "held_out",
                "kind",
                "n_train",
                "n_test",
                "rmse",
                "nlpd",
                "coverage90",
                "fit_seconds",
            ]
        )
        for r in results:
            sc = scores(np.array(r["y"]), np.array(r["mean"]), np.array(r["std"]))
            w.writerow(
                [
                    r["seed"],
                    r["split"],
                    r["held_out"],
                    r["kind"],
                    r["n_train"],
                    r["n_test"],
                    f"{sc['rmse']:.4f}",
                    f"{sc['nlpd']:.4f}",
                    f"{sc['coverage90']:.4f}",
                    f"{r['fit_seconds']:.2f}",
                ]
            )
    rmse = summary["rmse"]
    ratios = {}
    if {"interface_gnn", "bulk_gnn"} <= rmse.keys():
        ratios["interface_over_bulk"] = (rmse["interface_gnn"] / rmse["bulk_gnn"], "<= 0.6")
    if {"interface_gnn", "descriptor_gp"} <= rmse.keys():
        ratios["interface_over_descriptor"] = (
            rmse["interface_gnn"] / rmse["descriptor_gp"],
            "<= 0.8",
        )
    for base in ("interface_gnn", "bulk_gnn"):
        if {base, f"{base}_nopretrain"} <= rmse.keys():
            ratios[f"{base}_pretrained_over_nopretrain"] = (
                rmse[base] / rmse[f"{base}_nopretrain"],
                "<= 0.7",
            )
    fit_times = [r["fit_seconds"] for r in results]
    base_times = {
        (r["seed"], r["kind"], r["group"]): r["base_seconds"]
        for r in results
        if r["base_seconds"] is not None
    }
    details = {
        "truth": truth_spec,
        "settings": {k: v for k, v in s.__dict__.items()},
        "lomo": summary,
        "lopo": lopo,
        "ratios_vs_targets": {k: [round(v[0], 3), v[1]] for k, v in ratios.items()},
        "coverage_target": "0.85 <= coverage90 <= 0.95",
        "representations": {str(k): v for k, v in table_info.items()},
        "fit_predict_seconds": {
            "mean": float(np.mean(fit_times)),
            "max": float(np.max(fit_times)),
            "mean_n_train": float(np.mean([r["n_train"] for r in results])),
        },
        "base_fit_seconds": {
            "count": len(base_times),
            "mean": float(np.mean(list(base_times.values()))) if base_times else None,
        },
        "total_seconds": round(seconds, 1),
    }
    (out / "details.json").write_text(json.dumps(details, indent=2) + "\n")
    plot(out / "parity.png", results, kinds)
    log(json.dumps(summary, indent=2))
    for k, (v, target) in ratios.items():
        log(f"{k}: {v:.3f} (target {target})")
    log(f"total {seconds:.0f} s; outputs in {out}")
    return summary


def plot(path: Path, results: list[dict], kinds: list[str]) -> None:
    """Parity (LOMO, all seeds pooled, 90 % bars) and calibration curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(3.2 * (len(kinds) + 1), 3.4))
    levels = np.linspace(0.05, 0.95, 19)
    for ax, kind in zip(axes[:-1], kinds, strict=True):
        rows = [r for r in results if r["kind"] == kind and r["split"] == "lomo"]
        y = np.concatenate([r["y"] for r in rows])
        mu = np.concatenate([r["mean"] for r in rows])
        sd = np.concatenate([r["std"] for r in rows])
        lo, hi = min(y.min(), mu.min()), max(y.max(), mu.max())
        ax.errorbar(y, mu, yerr=1.645 * sd, fmt=".", ms=2, alpha=0.3, elinewidth=0.5)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(f"{kind}\nRMSE {np.sqrt(np.mean((y - mu) ** 2)):.3f}", fontsize=8)
        ax.set_xlabel("true log10 ASR", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
        z = np.abs(y - mu) / np.maximum(sd, 1e-9)
        observed = [np.mean(z <= norm.ppf(0.5 + lv / 2)) for lv in levels]
        axes[-1].plot(levels, observed, label=kind)
    axes[-1].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[-1].set_title("calibration (LOMO)", fontsize=8)
    axes[-1].set_xlabel("nominal central interval", fontsize=8)
    axes[-1].set_ylabel("observed coverage", fontsize=8)
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


QUICK = Settings(
    seeds=1,
    n_full=20,
    n_screening=30,
    n_test=6,
    lopo_pairs=1,
    modifiers=["Au", "LiF", "MgO", "Cu"],
    partners=["LLZO", "LLTO"],
    hidden=16,
    layers=2,
    epochs=15,
    workers=1,
    warm_groups=2,
)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--full", action="store_true", help="10 seeds, every pair in LOPO")
    ap.add_argument("--quick", action="store_true", help="small slice of the library (tests)")
    ap.add_argument("--seeds", type=int, help="override the number of seeds")
    ap.add_argument("--workers", type=int, help="processes fitting GPs (default 2)")
    ap.add_argument("--truth", default=DEFAULT_TRUTH, help="ground truth as module:function")
    ap.add_argument(
        "--kinds",
        help="comma-separated surrogate kinds (default: all of lab.model.KINDS); 'oracle' adds "
        "the truth's own property table as a reference representation",
    )
    ap.add_argument(
        "--cold",
        action="store_true",
        help="start every fold's GP from the defaults (100 iterations) instead of a warm start",
    )
    args = ap.parse_args(argv)
    if args.quick:
        s = replace(QUICK)
    elif args.full:
        s = Settings(seeds=10, lopo_pairs=None)
    else:
        s = Settings()
    if args.seeds:
        s.seeds = args.seeds
    if args.workers:
        s.workers = args.workers
    if args.cold:
        s.warm_groups = 0
    if args.kinds:
        from lab.model import KINDS

        s.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        unknown = [k for k in s.kinds if k not in (*KINDS, ORACLE)]
        if unknown:
            ap.error(f"unknown kind(s) {unknown}; choose from {[*KINDS, ORACLE]}")
    run(args.out, s, args.truth, log=lambda msg: print(msg, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
