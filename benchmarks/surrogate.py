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

Usage::

    python benchmarks/surrogate.py --out DIR [--full] [--quick] [--seeds N] [--workers N]
                                   [--truth module:function]

Writes ``DIR/summary.json`` (LOMO, shaped ``{"rmse": {name: value}, "nlpd": {...},
"coverage90": {...}}``), ``DIR/folds.csv`` (every fold of both splits), ``DIR/details.json``
(settings, LOPO summary, ratios against the targets, timings) and ``DIR/parity.png`` (parity
and calibration). The default (3 seeds, 435 GP fits, 6 encoder pretrainings) took 46 min on
the 2-core development machine while other heavy jobs shared it (load 5-7; 12.6 s per fit of
~380 observations), of which pretraining is ~4 min and is cached for reruns; idle, about 20 min
is expected. ``--workers`` sets the parallel fits. ``--full`` runs 10 seeds and every pair in
LOPO; ``--quick`` runs a small slice of the library (about 30 s; used by the test suite).
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


def _measure(truth, params: dict, rng: np.random.Generator) -> dict:
    return {**params, "fidelity": "full", "value": float(truth(params, "full", rng))}


def _fit_fold(task: dict) -> dict:
    """Fit one surrogate on one fold and score it (runs in a worker process)."""
    import torch

    from lab.model import Surrogate, SurrogateConfig

    torch.set_num_threads(1)
    s = Surrogate(SurrogateConfig(task["kind"]), task["modifiers"], task["partners"])
    s.table = task["table"]
    t0 = time.perf_counter()
    s.fit(task["train"])
    mean, std = s.predict(task["test"])
    seconds = time.perf_counter() - t0
    y = np.log10([o["value"] for o in task["test"]])
    return {
        "seed": task["seed"],
        "split": task["split"],
        "held_out": task["held_out"],
        "kind": task["kind"],
        "n_train": len(task["train"]),
        "n_test": len(y),
        "y": y.tolist(),
        "mean": mean.tolist(),
        "std": std.tolist(),
        "fit_seconds": seconds,
    }


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
    tasks, table_info = [], {}
    for seed in range(s.seeds):
        data = draw_data(truth, seed, mods, parts, s)
        tables, table_info[seed] = build_tables(seed, data, mods, parts, s, log)
        for kind in s.kinds:
            for m, test in data["lomo"].items():
                train = [o for o in data["measured"] if o["modifier"] != m] + data["calc"]
                tasks.append(_task(seed, "lomo", m, kind, tables[kind], train, test, mods, parts))
            for (m, p), test in data["lopo"].items():
                train = [
                    o for o in data["measured"] if (o["modifier"], o["partner"]) != (m, p)
                ] + data["calc"]
                tasks.append(
                    _task(seed, "lopo", f"{m}|{p}", kind, tables[kind], train, test, mods, parts)
                )
    log(f"fitting {len(tasks)} folds with {s.workers} worker(s)")
    results = []
    if s.workers > 1:
        with ProcessPoolExecutor(s.workers, mp_context=get_context("spawn")) as pool:
            for i, r in enumerate(pool.map(_fit_fold, tasks, chunksize=4)):
                results.append(r)
                if (i + 1) % 50 == 0:
                    log(f"  {i + 1}/{len(tasks)} folds ({time.perf_counter() - t_start:.0f} s)")
    else:
        results = [_fit_fold(t) for t in tasks]
    return write_outputs(
        out, s, truth_spec, results, table_info, time.perf_counter() - t_start, log
    )


def _task(seed, split, held_out, kind, table, train, test, mods, parts) -> dict:
    return {
        "seed": seed,
        "split": split,
        "held_out": held_out,
        "kind": kind,
        "table": table,
        "train": train,
        "test": test,
        "modifiers": mods,
        "partners": parts,
    }


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
    run(args.out, s, args.truth, log=lambda msg: print(msg, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
