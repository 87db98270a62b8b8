"""Benchmark of the multi-fidelity optimiser against baselines and peers.

    python benchmarks/optimizer.py --out DIR [--full | --quick] [--seeds N] [--jobs N]
        [--problems a,b] [--strategies x,y] [--interface-truth module:function]
        [--interface-campaign campaigns/x.yaml]
    python benchmarks/optimizer.py --merge DIR [DIR ...] --out DIR   # one report from runs

Problems (budgets in full-fidelity cost units: interface 15, 30 with ``--full``, hartmann 30,
branin 10, negative_control 30; fidelity costs 0.05 / 0.25 / 1 for interface, 0.1 / 0.3 / 1
for the synthetic problems):

``interface``
    The simulated reference world of the interlayer campaign (``benchmarks/interlayer.yaml``):
    Li | interlayer | LLZO, the interlayer chosen among the materials library's 25 candidates
    (categorical) with its thickness (searched on a log scale), anneal temperature and anneal
    time; ground truth ``simulators.truths_interface:interlayer_asr`` (area-specific
    resistance, minimised; log scale), fidelities ``calculation`` (ideal-interface estimate:
    deterministic, biased, blind to the anneal, as the campaign declares with ``ignores``),
    ``screening`` (one-frequency |Z|: noisy, partly informative) and ``full`` (the impedance
    sweep). Switch the truth with ``--interface-truth`` and the design space and fidelities
    with ``--interface-campaign``.
``demo`` (not in the default set)
    The demo world ``simulators.truths:demo_interface`` over the demo campaign's solution
    coating parameters (volumes, rate), fidelities as above.
``hartmann``, ``branin``
    BoTorch's ``AugmentedHartmann`` (6-D, maximised) and ``AugmentedBranin`` (2-D, minimised)
    with fidelity levels s = 0.5 / 0.75 / 1.
``negative_control``
    Hartmann-6 at the target; both cheap fidelities return an unrelated smooth function
    (random Fourier features), so they carry no information about the target.

Strategies: ``random`` (uniform designs at the target on the campaign's scales, best
observed), ``sf_qlognei`` (target fidelity only, ``SingleTaskGP`` + qLogNEI), ``mf_gp`` (the
optimiser's multi-fidelity default on plain descriptors), ``mf_surrogate`` (the optimiser
with the project's interface surrogate, model ``mf_surrogate``: a pretrained interface-GNN
embedding of the interlayer | LLZO pair plus the process parameters under a multi-task GP
with a physics prior mean; only on problems with a materials choice, i.e. ``interface``; the
encoder is pretrained on one ``calculation`` label per library modifier, which the run pays
for and tells the optimiser as observations: see :data:`PRETRAIN_THICKNESS_NM`;
``mf_surrogate[kind=descriptor_gp]`` swaps the representation), and the single-fidelity
peers ``ax`` (Ax ``Client``) and ``baybe`` (BayBE ``Campaign``) from the optional extra
``peers`` (skipped with a note when not installed). Variants for ablations:
``mf[model=mf_mt,acq=mf_kg,gate=off,verify=off]``.

Metrics, per seed: simple regret of the recommendation at the target fidelity (normalised:
``|f(x_rec) - f*| / |f_ref - f*|`` with ``f_ref`` the median over designs uniform in
physical units (whatever scale the campaign searches on), so 1 = a typical random design and
0 = the optimum; with ``f`` replaced by ``log f`` where the campaign models the log of its
objective, ``interface`` and ``branin``: there 5 % regret means within ``(f_ref / f*)^0.05``
of the optimum, e.g. 15 % on ``interface``) against cumulative cost; cost to reach regret <=
5 % (the whole budget when never reached; ``reached`` = fraction of seeds that did; a median
is censored when at most half the seeds reached the target, so a ratio involving it is
printed as a bound, ``>=``/``<=``, or ``n/a`` when both sides are censored); acceleration =
random's cost to target / the strategy's (``random`` runs with a budget
:data:`RANDOM_BUDGET_FACTOR` times larger, since its evaluations are free here, so that its
cost to target is measured rather than censored); median and 10-90 % band over seeds.

Writes ``DIR/summary.json`` (``{problem: {strategy: {"cost_to_target", "reached",
"final_regret"}}}``, medians), ``DIR/steps.csv`` (every step), ``DIR/report.json`` (bands,
accelerations, proposal times, notes), ``DIR/summary.md`` and ``DIR/convergence_<problem>.png``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import csv
import importlib
import importlib.util
import json
import logging
import math
import multiprocessing as mp
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_REGRET = 0.05
RANDOM_BUDGET_FACTOR = 20
MAX_STEPS = 300
"""Safety cap on the steps of one run (a run that reaches it stops early; see the CSV)."""
INTERFACE_BUDGET = 15.0
"""Budget of ``interface`` in the default run (which has to finish within 25 min here)."""
INTERFACE_BUDGET_FULL = 30.0
"""Budget of ``interface`` with ``--full``: at 15, fewer than half of ``sf_qlognei``'s seeds
reach the target, so its median cost is censored and no cost ratio against it is measured."""
RUN_CPU_LIMIT = math.inf
"""CPU seconds after which a run stops (``--run-cpu-limit``; its regret stays where it was)."""

INTERFACE_TRUTH = "simulators.truths_interface:interlayer_asr"
INTERFACE_CAMPAIGN = ROOT / "benchmarks" / "interlayer.yaml"
DEMO_TRUTH = "simulators.truths:demo_interface"
PRETRAIN_THICKNESS_NM = 2.0
"""Thickness of the one ``calculation`` label per modifier that pretrains ``mf_surrogate``."""
SURROGATE_SEED = 0
"""Encoder seed of ``mf_surrogate`` (fixed: the pretrained encoder is one asset for all runs)."""
SURROGATE_EPOCHS: int | None = None
"""Pretraining epochs of ``mf_surrogate`` (None: the surrogate's default; ``--quick``: 20)."""
QUICK_MODIFIERS = ["LiF", "Al2O3", "Au", "Cu", "LiAl"]
"""Interlayer choices of the ``interface`` problem in ``--quick`` runs."""
DEFAULT_PROBLEMS = ["interface", "hartmann", "branin", "negative_control"]
DEMO_PARAMETERS: list[dict[str, Any]] = [
    {"name": "precursor_volume_ul", "type": "continuous", "low": 2.0, "high": 40.0, "unit": "uL"},
    {"name": "solvent_volume_ul", "type": "continuous", "low": 0.0, "high": 40.0, "unit": "uL"},
    {
        "name": "precursor_rate_ul_min",
        "type": "continuous",
        "low": 20.0,
        "high": 400.0,
        "unit": "uL/min",
    },
]
INTERFACE_FIDELITIES: list[dict[str, Any]] = [
    {"name": "calculation", "cost": 0.05, "route": "calculation"},
    {"name": "screening", "cost": 0.25, "route": "calculation"},
    {"name": "full", "cost": 1.0, "route": "calculation"},
]
"""Fidelities of an interface problem without a campaign file: all computed by the truth."""
SYNTHETIC_FIDELITIES = [("low", 0.1, 0.5), ("mid", 0.3, 0.75), ("full", 1.0, 1.0)]
"""Name, cost and fidelity level s of the synthetic problems' fidelities."""

DEFAULT_STRATEGIES = ["random", "sf_qlognei", "mf_gp", "mf_surrogate", "ax", "baybe"]
PEERS = {"ax": "ax", "baybe": "baybe"}


# ---------------------------------------------------------------------------------- problems
@dataclass
class Problem:
    """A benchmark problem.

    Attributes:
        name: Problem name.
        campaign: Campaign mapping (validated by :func:`lab.spec.parse_campaign`).
        truth: ``truth(params, fidelity, rng) -> value`` in campaign units.
        true_value: Noise-free target-fidelity value of a design.
        budget: Budget in full-fidelity cost units.
        f_star: Optimal target value.
        f_ref: Median target value over uniform random designs.
        note: One line on what the problem tests.
    """

    name: str
    campaign: dict[str, Any]
    truth: Callable[[dict[str, Any], str, np.random.Generator], float]
    true_value: Callable[[dict[str, Any]], float]
    budget: float
    f_star: float = math.nan
    f_ref: float = math.nan
    note: str = ""

    @property
    def minimize(self) -> bool:
        return self.campaign["objective"]["direction"] == "minimize"

    @property
    def target(self) -> str:
        return self.campaign["target_fidelity"]

    @property
    def log_scale(self) -> bool:
        """Whether regret is measured on the log scale (the campaign models the log)."""
        return bool(self.campaign["objective"].get("log_transform"))

    def regret(self, value: float) -> float:
        """Normalised simple regret of a target value (0 = optimum, 1 = median random).

        On the objective's modelling scale: ``log`` for a log-transformed objective, where
        the values span decades (an interfacial resistance twice the optimum is far from
        it, however small the median random design makes that gap look in linear units).
        """
        f = math.log if self.log_scale else float
        gap = f(self.f_ref) - f(self.f_star)
        return max(0.0, (f(max(value, 1e-300)) - f(self.f_star)) / gap)

    def spec(self, single_fidelity: bool = False) -> Any:
        from lab.spec import parse_campaign

        data = dict(self.campaign)
        if single_fidelity:
            data["fidelities"] = [f for f in data["fidelities"] if f["name"] == self.target]
        return parse_campaign(data, f"<benchmark {self.name}>")


def _campaign(
    name: str,
    parameters: list[dict[str, Any]],
    fidelities: list[dict[str, Any]],
    direction: str,
    log_transform: bool,
    n_init: int,
    budget: float,
    target: str = "full",
) -> dict[str, Any]:
    return {
        "name": f"bench-{name}",
        "interface": {"substrate": "bench", "other_phase": "bench"},
        "parameters": parameters,
        "objective": {
            "name": "objective",
            "unit": "1",
            "direction": direction,
            "log_transform": log_transform,
        },
        "fidelities": fidelities,
        "target_fidelity": target,
        "budget": budget,
        "initial_design": n_init,
    }


def _load(ref: str) -> Callable[..., float]:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _unit_params(d: int) -> list[dict[str, Any]]:
    return [
        {"name": f"x{i + 1}", "type": "continuous", "low": 0.0, "high": 1.0, "unit": "1"}
        for i in range(d)
    ]


def _synthetic_fids() -> list[dict[str, Any]]:
    return [{"name": n, "cost": c, "route": "calculation"} for n, c, _ in SYNTHETIC_FIDELITIES]


def _botorch_truth(fn: Any, names: list[str], bounds: list[tuple[float, float]]) -> Callable:
    import torch

    levels = {n: s for n, _, s in SYNTHETIC_FIDELITIES}

    def truth(params: dict[str, Any], fidelity: str, rng: np.random.Generator) -> float:
        x = [lo + (hi - lo) * float(params[n]) for n, (lo, hi) in zip(names, bounds, strict=True)]
        X = torch.tensor([[*x, levels[fidelity]]], dtype=torch.double)
        return float(fn.forward(X, noise=False))  # forward applies ``negate``

    return truth


def _rff(d: int, seed: int, n: int = 64, scale: float = 4.0) -> Callable[[np.ndarray], float]:
    """A fixed smooth random function on [0, 1]^d (random Fourier features)."""
    g = np.random.default_rng(seed)
    W = g.normal(0.0, scale, size=(n, d))
    b = g.uniform(0.0, 2 * math.pi, size=n)
    a = g.normal(0.0, 1.0, size=n) * math.sqrt(2.0 / n)
    return lambda x: float(0.3 + 0.4 * (a @ np.cos(W @ x + b)))


def _interface_problem(
    name: str, truth_ref: str, campaign: str | Path | None, budget: float = INTERFACE_BUDGET
) -> Problem:
    """A problem on a simulated world: a truth over a campaign's design space and fidelities."""
    itruth = _load(truth_ref)
    params, fids = DEMO_PARAMETERS, INTERFACE_FIDELITIES
    direction, log_t, n_init = "minimize", True, 6
    if campaign:
        from lab.spec import load_campaign

        c = load_campaign(campaign)
        params = [p.model_dump() for p in c.parameters]
        if len(c.fidelities) > 1:
            fids = [f.model_dump() for f in c.fidelities]
        direction, log_t = c.objective.direction, c.objective.log_transform
        n_init = c.initial_design
    tname = max(fids, key=lambda f: f["cost"])["name"]
    data = _campaign(name, params, fids, direction, log_t, n_init, budget, target=tname)
    if campaign:
        data["interface"] = {
            "substrate": c.interface.substrate,
            "other_phase": c.interface.other_phase,
        }
        data["safety"] = c.safety.model_dump()
        data["process"] = [st.model_dump() for st in c.process]
    return Problem(
        name,
        data,
        truth=itruth,
        true_value=lambda p, _t=itruth, _n=tname: float(_t(p, _n, np.random.default_rng(0))),
        budget=budget,
        note=f"{truth_ref}; fidelities " + ", ".join(f"{f['name']} ({f['cost']:g})" for f in fids),
    )


def make_problems(
    interface_truth: str = INTERFACE_TRUTH, interface_campaign: str | Path | None = None
) -> dict[str, Problem]:
    """The benchmark problems (``f_star`` and ``f_ref`` filled in by :func:`calibrate`)."""
    from botorch.test_functions.multi_fidelity import AugmentedBranin, AugmentedHartmann

    interface = _interface_problem(
        "interface", interface_truth, interface_campaign or INTERFACE_CAMPAIGN
    )
    demo = _interface_problem("demo", DEMO_TRUTH, None)

    # hartmann ------------------------------------------------------------------------------
    h = AugmentedHartmann(negate=True)
    names6 = [f"x{i + 1}" for i in range(6)]
    htruth = _botorch_truth(h, names6, [(0.0, 1.0)] * 6)
    hartmann = Problem(
        "hartmann",
        _campaign("hartmann", _unit_params(6), _synthetic_fids(), "maximize", False, 10, 30.0),
        truth=htruth,
        true_value=lambda p: htruth(p, "full", np.random.default_rng(0)),
        budget=30.0,
        f_star=3.32237,
        note="AugmentedHartmann (negated, maximised), s = 0.5 / 0.75 / 1",
    )

    # branin --------------------------------------------------------------------------------
    br = AugmentedBranin()
    names2 = ["x1", "x2"]
    btruth = _botorch_truth(br, names2, [(-5.0, 10.0), (0.0, 15.0)])
    branin = Problem(
        "branin",
        _campaign("branin", _unit_params(2), _synthetic_fids(), "minimize", True, 4, 10.0),
        truth=btruth,
        true_value=lambda p: btruth(p, "full", np.random.default_rng(0)),
        budget=10.0,
        f_star=0.397887,
        note="AugmentedBranin (minimised), s = 0.5 / 0.75 / 1, inputs scaled to the unit box",
    )

    # negative control ----------------------------------------------------------------------
    g = _rff(6, seed=1234)

    def ntruth(params: dict[str, Any], fidelity: str, rng: np.random.Generator) -> float:
        if fidelity == "full":
            return htruth(params, "full", rng)
        return g(np.array([float(params[n]) for n in names6]))

    negative = Problem(
        "negative_control",
        _campaign(
            "negative_control", _unit_params(6), _synthetic_fids(), "maximize", False, 10, 30.0
        ),
        truth=ntruth,
        true_value=lambda p: htruth(p, "full", np.random.default_rng(0)),
        budget=30.0,
        f_star=3.32237,
        note="Hartmann-6 at the target; low and mid return an unrelated smooth function",
    )
    return {p.name: p for p in (interface, hartmann, branin, negative, demo)}


def calibrate(problem: Problem, n: int = 2048) -> Problem:
    """Fill in ``f_ref`` (median of random designs) and, if unknown, ``f_star``."""
    import torch
    from scipy.optimize import minimize

    from lab.optimize._space import DesignSpace
    from lab.spec import parse_campaign

    # uniform in the physical units, whatever scale the campaign searches on: the regret
    # scale is a property of the problem, not of how a strategy spreads its designs
    linear = dict(problem.campaign)
    linear["parameters"] = [
        {**p, "scale": "linear"} if p.get("type", "continuous") == "continuous" else p
        for p in problem.campaign["parameters"]
    ]
    space = DesignSpace(parse_campaign(linear, f"<benchmark {problem.name}>"))
    gen = torch.Generator().manual_seed(20261126)
    X = space.random(n, gen)
    designs = [space.decode(x) for x in X]
    vals = np.array([problem.true_value(p) for p in designs])
    problem.f_ref = float(np.median(vals))
    if math.isnan(problem.f_star):
        sign = 1.0 if problem.minimize else -1.0
        cont = space.continuous_columns
        best = math.inf
        for i in np.argsort(sign * vals)[:8]:
            x0 = X[i].clone()

            def f(u: np.ndarray, x0: Any = x0) -> float:
                x = x0.clone()
                x[cont] = torch.tensor(np.clip(u, 0.0, 1.0), dtype=torch.double)
                return sign * problem.true_value(space.decode(x))

            res = minimize(f, x0[cont].numpy(), method="Nelder-Mead", options={"xatol": 1e-6})
            best = min(best, float(res.fun))
        problem.f_star = sign * best
    return problem


# -------------------------------------------------------------------------------- strategies
@dataclass
class Step:
    problem: str
    strategy: str
    seed: int
    step: int
    fidelity: str
    cost: float
    cumulative_cost: float
    value: float
    regret: float
    propose_cpu_s: float
    propose_wall_s: float
    how: str = ""

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Step:
        """A step from its ``steps.csv`` row (text), each field converted to its type."""
        types = {"int": int, "float": float, "str": str}
        return cls(**{f.name: types[f.type](row[f.name]) for f in fields(cls)})


@dataclass
class Run:
    problem: str
    strategy: str
    seed: int
    budget: float
    steps: list[Step] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None
    error_note: str | None = None


def _names(text: str) -> list[str]:
    """Comma-separated strategy names; commas inside a variant's brackets stay in it."""
    return [n for n in re.split(r",(?![^\[]*\])", text) if n]


def _parse_strategy(name: str) -> tuple[str, dict[str, str]]:
    m = re.fullmatch(r"(\w+)(?:\[(.*)\])?", name)
    if not m:
        raise SystemExit(f"bad strategy name {name!r}")
    opts = dict(kv.split("=", 1) for kv in m.group(2).split(",")) if m.group(2) else {}
    return m.group(1), opts


_SURROGATES: dict[tuple[str, str], Any] = {}
"""Prepared surrogates of this process by (problem, kind) (inherited by forked workers)."""


def has_materials(problem: Problem) -> bool:
    """Whether a problem chooses an interlayer from the library (``mf_surrogate`` applies)."""
    return any(p["name"] == "modifier" for p in problem.campaign["parameters"])


def pretraining_labels(problem: Problem) -> list[tuple[dict[str, Any], float]]:
    """The ``calculation`` labels that pretrain ``mf_surrogate``: one per library modifier.

    Returns:
        ``(params, value)`` pairs: each modifier at :data:`PRETRAIN_THICKNESS_NM`, no anneal
        (lowest temperature and time of the space), partner the campaign's other phase.
    """
    spec = problem.spec()
    by_name = {p.name: p for p in spec.parameters}
    out = []
    rng = np.random.default_rng(0)  # the calculation fidelity is deterministic
    cheap = min(spec.fidelities, key=lambda f: f.cost).name
    for m in by_name["modifier"].choices:
        params: dict[str, Any] = {"modifier": m}
        for p in spec.parameters:
            if p.name == "thickness_nm":
                params[p.name] = min(max(PRETRAIN_THICKNESS_NM, p.low), p.high)
            elif p.name != "modifier":
                params[p.name] = p.low if p.type == "continuous" else p.choices[0]
        out.append((params, float(problem.truth(params, cheap, rng))))
    return out


def prepared_surrogate(problem: Problem, kind: str) -> Any:
    """The problem's surrogate of ``kind``, pretrained on :func:`pretraining_labels` (cached)."""
    key = (problem.name, kind)
    if key not in _SURROGATES:
        from lab.optimize import surrogate_for

        spec = problem.spec()
        partner = spec.interface.other_phase
        labels = [
            (p["modifier"], p.get("partner", partner), float(p["thickness_nm"]), v)
            for p, v in pretraining_labels(problem)
        ]
        _SURROGATES[key] = surrogate_for(
            spec, kind, labels, seed=SURROGATE_SEED, epochs=SURROGATE_EPOCHS
        )
    return _SURROGATES[key]


def _run_optimizer(
    problem: Problem,
    run: Run,
    opts: dict[str, str],
    single: bool,
    quick: bool,
    surrogate: str | None = None,
) -> None:
    from lab.errors import LabError
    from lab.optimize import Optimizer, Proposal

    spec = problem.spec(single_fidelity=single)
    kw: dict[str, Any] = {"num_restarts": 4, "raw_samples": 128 if quick else 256}
    if "model" in opts:
        kw["model"] = opts["model"]
    if "acq" in opts:
        kw["acquisition"] = opts["acq"]
    if "gate_model" in opts:
        kw["gate_model"] = opts["gate_model"]
    if "restarts" in opts:
        kw["num_restarts"] = int(opts["restarts"])
    if "raw" in opts:
        kw["raw_samples"] = int(opts["raw"])
    for flag, arg in (("gate", "fidelity_gate"), ("verify", "verify_best")):
        if flag in opts:
            kw[arg] = opts[flag] not in ("off", "0", "false")
    prior: list[tuple[Any, float]] = []
    if surrogate is not None:
        kw["model"] = "mf_surrogate"
        kw["surrogate"] = prepared_surrogate(problem, surrogate)
        kw["cover_choices"] = False  # the pretraining labels cover every interlayer already
        cheap = min(spec.fidelities, key=lambda f: f.cost)
        prior = [
            (Proposal(p, cheap.name, cheap.cost, "pretraining"), v)
            for p, v in pretraining_labels(problem)
        ]
    opt = Optimizer(spec, seed=run.seed, **kw)
    rng = np.random.default_rng(10_000 + run.seed)
    spent, regret = 0.0, 1.0
    for j, (p, v) in enumerate(prior):  # the pretraining labels: paid for, and data
        opt.tell(p, v)
        spent += p.cost
        run.steps.append(
            Step(
                problem.name,
                run.strategy,
                run.seed,
                j,
                p.fidelity,
                p.cost,
                spent,
                v,
                1.0,
                0.0,
                0.0,
                "pretraining",
            )
        )
    c_start = time.process_time()
    for i in range(len(prior), len(prior) + MAX_STEPS):
        if time.process_time() - c_start > RUN_CPU_LIMIT:
            run.error_note = f"stopped at the CPU limit ({RUN_CPU_LIMIT:g} s) after {spent:.2f}"
            break
        t0, c0 = time.perf_counter(), time.process_time()
        (p,) = opt.ask(1)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if spent + p.cost > run.budget + 1e-9:
            break
        v = problem.truth(p.params, p.fidelity, rng)
        opt.tell(p, v)
        spent += p.cost
        try:
            regret = problem.regret(problem.true_value(opt.recommend().params))
        except LabError:  # nothing at the target yet
            regret = 1.0
        run.steps.append(
            Step(
                problem.name,
                run.strategy,
                run.seed,
                i,
                p.fidelity,
                p.cost,
                spent,
                v,
                regret,
                dc,
                dt,
                p.strategy + ("" if opt.gate.get("open", True) else "/gate-closed"),
            )
        )


def _run_random(problem: Problem, run: Run) -> None:
    import torch

    from lab.optimize._space import DesignSpace

    space = DesignSpace(problem.spec(single_fidelity=True))
    gen = torch.Generator().manual_seed(run.seed)
    target = problem.target
    best = math.inf
    n = int(run.budget * RANDOM_BUDGET_FACTOR)
    X = space.random(n, gen)
    for i in range(n):
        params = space.decode(X[i])
        v = problem.true_value(params)
        best = min(best, problem.regret(v))
        run.steps.append(
            Step(problem.name, run.strategy, run.seed, i, target, 1.0, i + 1.0, v, best, 0.0, 0.0)
        )


def _run_ax(problem: Problem, run: Run, n_init: int) -> None:
    from ax.api.client import Client
    from ax.api.configs import ChoiceParameterConfig, RangeParameterConfig

    # Ax sets INFO on each of its loggers: quiet them all (they are created on import)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("ax", "pyro", "botorch"):
            logging.getLogger(name).setLevel(logging.ERROR)
    spec = problem.spec(single_fidelity=True)
    client = Client(random_seed=run.seed)
    parameters: list[Any] = []
    for p in spec.parameters:
        if p.type == "continuous":
            parameters.append(
                RangeParameterConfig(p.name, (p.low, p.high), "float", scaling=p.scale)
            )
        else:
            parameters.append(ChoiceParameterConfig(p.name, list(p.choices), "str", False))
    client.configure_experiment(parameters=parameters, name=f"bench-{problem.name}")
    client.configure_optimization(objective="-y" if problem.minimize else "y")
    client.configure_generation_strategy(
        initialization_budget=n_init, initialization_random_seed=run.seed
    )
    rng = np.random.default_rng(10_000 + run.seed)
    spent = 0.0
    for i in range(min(MAX_STEPS, int(run.budget))):
        t0, c0 = time.perf_counter(), time.process_time()
        trials = client.get_next_trials(max_trials=1)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        (idx, params), *_ = trials.items()
        v = problem.truth(dict(params), problem.target, rng)
        client.complete_trial(idx, raw_data={"y": v})
        spent += 1.0
        best = client.get_best_parameterization()[0]
        regret = problem.regret(problem.true_value(dict(best)))
        run.steps.append(
            Step(
                problem.name,
                run.strategy,
                run.seed,
                i,
                problem.target,
                1.0,
                spent,
                v,
                regret,
                dc,
                dt,
            )
        )


def _run_baybe(problem: Problem, run: Run, n_init: int) -> None:
    import pandas as pd
    from baybe import Campaign
    from baybe.objectives import SingleTargetObjective
    from baybe.parameters import CategoricalParameter, NumericalContinuousParameter
    from baybe.recommenders import BotorchRecommender, RandomRecommender, TwoPhaseMetaRecommender
    from baybe.searchspace import SearchSpace
    from baybe.targets import NumericalTarget
    from baybe.utils.random import set_random_seed

    set_random_seed(run.seed)
    spec = problem.spec(single_fidelity=True)
    parameters: list[Any] = []
    logs = {p.name for p in spec.parameters if p.type == "continuous" and p.scale == "log"}
    for p in spec.parameters:
        if p.name in logs:  # BayBE has no log scale: it searches log10 of the value
            bounds = (math.log10(p.low), math.log10(p.high))
            parameters.append(NumericalContinuousParameter(p.name, bounds))
        elif p.type == "continuous":
            parameters.append(NumericalContinuousParameter(p.name, (p.low, p.high)))
        else:
            parameters.append(CategoricalParameter(p.name, list(p.choices)))
    campaign = Campaign(
        searchspace=SearchSpace.from_product(parameters),
        objective=SingleTargetObjective(NumericalTarget("y", minimize=problem.minimize)),
        recommender=TwoPhaseMetaRecommender(
            initial_recommender=RandomRecommender(),
            recommender=BotorchRecommender(),
            switch_after=n_init,
        ),
    )
    rng = np.random.default_rng(10_000 + run.seed)
    spent, best = 0.0, math.inf
    for i in range(min(MAX_STEPS, int(run.budget))):
        t0, c0 = time.perf_counter(), time.process_time()
        df = campaign.recommend(batch_size=1)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        searched = {k: (v.item() if hasattr(v, "item") else v) for k, v in df.iloc[0].items()}
        params = {k: (10.0**v if k in logs else v) for k, v in searched.items()}
        v = problem.truth(params, problem.target, rng)
        campaign.add_measurements(pd.DataFrame([{**searched, "y": v}]))
        spent += 1.0
        best = min(best, problem.regret(problem.true_value(params)))
        run.steps.append(
            Step(
                problem.name, run.strategy, run.seed, i, problem.target, 1.0, spent, v, best, dc, dt
            )
        )


_PROBLEMS: dict[str, Problem] = {}
"""The problems of this process (inherited by forked workers: closures do not pickle)."""


def run_one(task: tuple[str, str, int, bool]) -> Run:
    """Run one strategy on one problem (by name, see :data:`_PROBLEMS`) with one seed."""
    pname, strategy, seed, quick = task
    problem = _PROBLEMS[pname]
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    base, opts = _parse_strategy(strategy)
    run = Run(problem.name, strategy, seed, problem.budget)
    n_init = problem.campaign["initial_design"]
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if base == "random":
            run.budget = problem.budget * RANDOM_BUDGET_FACTOR
            _run_random(problem, run)
        elif base == "sf_qlognei":
            _run_optimizer(problem, run, {"acq": "qlognei", **opts}, single=True, quick=quick)
        elif base in ("mf_gp", "mf"):
            _run_optimizer(problem, run, opts, single=False, quick=quick)
        elif base == "mf_surrogate":
            kind = opts.pop("kind", "interface_gnn")
            _run_optimizer(problem, run, opts, single=False, quick=quick, surrogate=kind)
        elif base == "ax":
            _run_ax(problem, run, n_init)
        elif base == "baybe":
            _run_baybe(problem, run, n_init)
        else:
            raise ValueError(f"unknown strategy {strategy!r}")
    except Exception as exc:  # noqa: BLE001 - recorded in the report, the others go on
        run.error = f"{type(exc).__name__}: {exc}"
    run.wall_s = time.perf_counter() - t0
    run.cpu_s = time.process_time() - c0
    return run


# ---------------------------------------------------------------------------------- metrics
def regret_at(run: Run, cost: float) -> float:
    """Regret of the recommendation after spending ``cost``."""
    r = 1.0
    for s in run.steps:
        if s.cumulative_cost > cost + 1e-9:
            break
        r = s.regret
    return r


def cost_to_target(run: Run, budget: float) -> tuple[float, bool]:
    """Cumulative cost when the regret first reaches the target (the budget when never)."""
    for s in run.steps:
        if s.regret <= TARGET_REGRET:
            return s.cumulative_cost, True
    return budget, False


def measured_cost_to_target(run: Run, problem: Problem, budget: float) -> tuple[float, bool]:
    """Cumulative cost when a design within the target regret was first *measured* at the
    target (its measured value, noise included), the budget when never.

    Stricter than :func:`cost_to_target`, which follows the recommendation: a recommendation
    may be a design the model rates best but nobody has measured at the target yet.
    """
    for s in run.steps:
        if s.fidelity == problem.target and problem.regret(s.value) <= TARGET_REGRET:
            return s.cumulative_cost, True
    return budget, False


def _q(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values, dtype=float), q)) if values else math.nan


def summarise(problems: dict[str, Problem], runs: list[Run]) -> tuple[dict, dict]:
    """``summary`` (the fixed shape) and ``report`` (bands, accelerations, timings)."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    report: dict[str, Any] = {}
    for pname, problem in problems.items():
        summary[pname], report[pname] = {}, {"problem": problem.note, "strategies": {}}
        report[pname]["f_star"], report[pname]["f_ref"] = problem.f_star, problem.f_ref
        report[pname]["budget"] = problem.budget
        by_strategy: dict[str, list[Run]] = {}
        for r in runs:
            if r.problem == pname:
                by_strategy.setdefault(r.strategy, []).append(r)
        for sname, rs in by_strategy.items():
            ok = [r for r in rs if r.error is None]
            if not ok:
                report[pname]["strategies"][sname] = {"errors": [r.error for r in rs]}
                continue
            budget = ok[0].budget
            ctt = [cost_to_target(r, budget) for r in ok]
            costs = [c for c, _ in ctt]
            final = [regret_at(r, problem.budget) for r in ok]
            measured = [measured_cost_to_target(r, problem, budget) for r in ok]
            times = [s.propose_cpu_s for r in ok for s in r.steps]
            walls = [s.propose_wall_s for r in ok for s in r.steps]
            summary[pname][sname] = {
                "cost_to_target": float(np.median(costs)),
                "reached": float(np.mean([hit for _, hit in ctt])),
                "final_regret": float(np.median(final)),
            }
            report[pname]["strategies"][sname] = {
                **summary[pname][sname],
                "cost_to_target_p10": _q(costs, 0.1),
                "cost_to_target_p90": _q(costs, 0.9),
                "final_regret_p10": _q(final, 0.1),
                "final_regret_p90": _q(final, 0.9),
                "budget": budget,
                "seeds": len(ok),
                "errors": [r.error for r in rs if r.error],
                "stopped": [r.error_note for r in ok if r.error_note],
                "propose_cpu_s_mean": float(np.mean(times)) if times else 0.0,
                "propose_cpu_s_max": float(np.max(times)) if times else 0.0,
                "propose_wall_s_mean": float(np.mean(walls)) if walls else 0.0,
                "steps_mean": float(np.mean([len(r.steps) for r in ok])),
                "wall_s_mean": float(np.mean([r.wall_s for r in ok])),
                "cpu_s_mean": float(np.mean([r.cpu_s for r in ok])),
                "cost_by_fidelity": _cost_by_fidelity(ok),
                "measured_cost_to_target": float(np.median([c for c, _ in measured])),
                "measured_reached": float(np.mean([hit for _, hit in measured])),
            }
        strat = report[pname]["strategies"]
        for sname, row in strat.items():
            if "cost_to_target" not in row:
                continue
            for ref in ("random", "sf_qlognei"):
                if ref in strat and "cost_to_target" in strat[ref] and sname != ref:
                    row[f"vs_{ref}"] = strat[ref]["cost_to_target"] / max(
                        row["cost_to_target"], 1e-9
                    )
                    # at most half reached: the median is, or averages in, a censored cost
                    ref_censored = strat[ref]["reached"] <= 0.5
                    row[f"vs_{ref}_censored"] = ref_censored
                    row[f"vs_{ref}_bound"] = _ratio_bound(ref_censored, row["reached"] <= 0.5)
    return summary, report


def _ratio_bound(ref_censored: bool, own_censored: bool) -> str:
    """How ``ref cost / own cost`` of two medians reads when either is censored at its budget.

    A median over seeds of which at most half reached the target is, or averages in, a budget
    that stands for "not reached": it is a lower bound on the true median cost, so the ratio
    is a lower bound (``>=``) when only the reference is censored, an upper bound (``<=``)
    when only the strategy is, and unknown (``n/a``) when both are.
    """
    if ref_censored and own_censored:
        return "n/a"
    return ">=" if ref_censored else "<=" if own_censored else ""


def _ratio_text(ratio: float | None, bound: str, invert: bool = False) -> str:
    """A ratio cell of the summary table, with its bound (flipped when ``invert``)."""
    if ratio is None:
        return ""
    if bound == "n/a":
        return "n/a (both censored)"
    if invert:
        ratio, bound = 1.0 / ratio, {">=": "<=", "<=": ">="}.get(bound, bound)
    return f"{bound}{ratio:.2f}x"


def _cost_by_fidelity(runs: list[Run]) -> dict[str, float]:
    tot: dict[str, float] = {}
    for r in runs:
        for s in r.steps:
            tot[s.fidelity] = tot.get(s.fidelity, 0.0) + s.cost / len(runs)
    return {k: round(v, 3) for k, v in tot.items()}


def plot(problem: Problem, runs: list[Run], path: Path) -> None:
    """Median regret against cumulative cost with the 10-90 % band, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0.0, problem.budget, 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    strategies: dict[str, list[Run]] = {}
    for r in runs:
        if r.problem == problem.name and r.error is None:
            strategies.setdefault(r.strategy, []).append(r)
    for sname, rs in strategies.items():
        curves = np.array([[regret_at(r, c) for c in grid] for r in rs])
        curves = np.maximum(curves, 1e-4)
        med = np.median(curves, axis=0)
        (line,) = ax.plot(grid, med, label=f"{sname} (n={len(rs)})")
        if len(rs) > 1:
            lo, hi = np.quantile(curves, 0.1, axis=0), np.quantile(curves, 0.9, axis=0)
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15)
    ax.axhline(TARGET_REGRET, color="grey", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("cumulative cost (full-fidelity units)")
    ax.set_ylabel("normalised regret of the recommendation")
    ax.set_title(f"{problem.name}: median and 10-90 % band")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out: Path, problems: dict[str, Problem], runs: list[Run], notes: list[str]):
    """Write summary.json, report.json, steps.csv, summary.md and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    summary, report = summarise(problems, runs)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    (out / "report.json").write_text(json.dumps({"notes": notes, "problems": report}, indent=2))
    with (out / "steps.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(Step.__dataclass_fields__))
        for r in runs:
            for s in r.steps:
                w.writerow([getattr(s, k) for k in Step.__dataclass_fields__])
    lines = ["# Optimiser benchmark", "", *[f"- {n}" for n in notes], ""]
    for pname, rep in report.items():
        lines += [
            f"## {pname} (budget {rep['budget']:g}; {rep['problem']})",
            "",
            "| strategy | cost to target (p10-p90) | reached | final regret | vs random "
            "| vs sf_qlognei | measured at target: cost (reached) | CPU s/proposal (max) "
            "| cost by fidelity |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for sname, row in rep["strategies"].items():
            if "cost_to_target" not in row:
                lines.append(f"| {sname} | error: {row['errors'][0]} ||||||||")
                continue
            vr_s = _ratio_text(row.get("vs_random"), row.get("vs_random_bound", ""))
            vs_s = _ratio_text(row.get("vs_sf_qlognei"), row.get("vs_sf_qlognei_bound", ""), True)
            vs_s = vs_s + " cost" if vs_s and not vs_s.startswith("n/a") else vs_s
            lines.append(
                f"| {sname} | {row['cost_to_target']:.2f} ({row['cost_to_target_p10']:.2f}-"
                f"{row['cost_to_target_p90']:.2f}) | {row['reached']:.2f} | "
                f"{row['final_regret']:.4f} | {vr_s} | {vs_s} | "
                f"{row['measured_cost_to_target']:.2f} ({row['measured_reached']:.2f}) | "
                f"{row['propose_cpu_s_mean']:.2f} "
                f"({row['propose_cpu_s_max']:.2f}) | {row['cost_by_fidelity']} |"
            )
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
    for problem in problems.values():
        plot(problem, runs, out / f"convergence_{problem.name}.png")
    return summary, report


# ---------------------------------------------------------------------- model comparison
MODEL_KINDS = ["mf_ar1", "mf_mt", "mf_ltk", "mf_ds", "mf_feature"]
FIDELITY_MIX = (0.5, 0.3, 0.2)
"""Share of training points at the cheapest, middle and target fidelity (cheap-heavy, as a
cost-aware search produces)."""


PROPOSAL_TIME_VARIANTS = ["mf_gp", "mf[acq=mf_mes]", "mf[acq=mf_kg]", "mf_surrogate"]
"""Strategies timed by ``--proposal-time`` (``mf_surrogate`` only where it applies)."""


def proposal_time(
    problems: dict[str, Problem], n_obs: int, variants: list[str], repeats: int = 2
) -> dict[str, Any]:
    """Wall and CPU seconds of one ``ask(1)`` after ``n_obs`` observations, a third per fidelity.

    The optimiser is fresh (a cold hyperparameter fit, the fidelity gate's two fits, the
    verification check, the acquisition): the worst case of a campaign, e.g. one resumed
    from the store. ``repeats`` fresh optimisers per variant; the median is reported.
    """
    import torch

    from lab.optimize import Optimizer, Proposal
    from lab.optimize._space import DesignSpace, FidelitySet

    out: dict[str, Any] = {}
    for pname, problem in problems.items():
        spec = problem.spec()
        space, fids = DesignSpace(spec), FidelitySet(spec)
        gen = torch.Generator().manual_seed(11)
        rng = np.random.default_rng(11)
        data = []
        for i, x in enumerate(space.random(n_obs, gen)):
            f = fids.names[i % len(fids)]
            params = space.decode(x)
            data.append(
                (Proposal(params, f, fids.cost_of(f), "data"), problem.truth(params, f, rng))
            )
        out[pname] = {}
        for variant in variants:
            base, opts = _parse_strategy(variant)
            kw: dict[str, Any] = {"num_restarts": 4, "raw_samples": 256}
            if "acq" in opts:
                kw["acquisition"] = opts["acq"]
            if base == "mf_surrogate":
                if not has_materials(problem):
                    continue
                kw["model"] = "mf_surrogate"
                kw["surrogate"] = prepared_surrogate(problem, opts.get("kind", "interface_gnn"))
            walls, cpus = [], []
            for r in range(repeats):
                opt = Optimizer(spec, seed=r, **kw)
                opt._n_initial_drawn = len(opt._plan)
                for prop, v in data:
                    opt.tell(prop, v)
                t0, c0 = time.perf_counter(), time.process_time()
                (prop,) = opt.ask(1)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            out[pname][variant] = {
                "observations": n_obs,
                "fidelities": len(fids),
                "wall_s": float(np.median(walls)),
                "cpu_s": float(np.median(cpus)),
                "runs": repeats,
                "last_strategy": prop.strategy,
            }
            print(f"{pname} {variant}: {out[pname][variant]}", flush=True)
    return out


def compare_models(
    problems: dict[str, Problem], sizes: tuple[int, ...], seeds: int, kinds: list[str]
) -> dict[str, Any]:
    """Held-out accuracy at the target fidelity of each model kind, trained on mixed data.

    For each problem, size and seed: ``n`` uniform random designs, each at a fidelity drawn
    with :data:`FIDELITY_MIX` (cheapest first); the model is fitted through the optimiser's
    own code path and scored on 500 random designs at the target (noise-free truth, model
    frame): RMSE relative to the target's standard deviation, mean negative log predictive
    density, and fit time.
    """
    import torch

    from lab.optimize import Optimizer, Proposal
    from lab.optimize._space import DesignSpace, FidelitySet

    out: dict[str, Any] = {}
    for pname, problem in problems.items():
        spec = problem.spec()
        space, fids = DesignSpace(spec), FidelitySet(spec)
        order = fids.by_cost()
        gen = torch.Generator().manual_seed(7)
        Xt = space.random(500, gen)
        yt = torch.tensor([problem.true_value(space.decode(x)) for x in Xt], dtype=torch.double)
        if spec.objective.log_transform:
            yt = yt.log()
        if problem.minimize:
            yt = -yt
        out[pname] = {}
        for kind in kinds:
            rows = []
            for n in sizes:
                for seed in range(seeds):
                    g = torch.Generator().manual_seed(1000 * seed + n)
                    rng = np.random.default_rng(seed)
                    opt = Optimizer(spec, seed=seed, model=kind)
                    X = space.random(n, g)
                    mix = torch.tensor(FIDELITY_MIX[: len(order)], dtype=torch.double)
                    which = torch.multinomial(mix / mix.sum(), n, True, generator=g).tolist()
                    which[:2] = [len(order) - 1] * 2  # at least two target points
                    for x, w in zip(X, which, strict=True):
                        f = fids.names[order[w]]
                        params = space.decode(x)
                        p = Proposal(params, f, fids.cost_of(f), "data", strategy="data")
                        opt.tell(p, problem.truth(params, f, rng))
                    t0 = time.perf_counter()
                    fit = opt._fit_general()
                    dt = time.perf_counter() - t0
                    Xq = Xt
                    if opt.multi_fidelity:
                        col = torch.full((len(Xt), 1), opt._fid_value(fids.target))
                        Xq = torch.cat([Xt, col.double()], -1)
                    with torch.no_grad():
                        post = fit.model.posterior(Xq, observation_noise=False)
                        mu = post.mean.squeeze(-1)
                        sd = post.variance.squeeze(-1).clamp_min(1e-12).sqrt()
                    rmse = float(((mu - yt) ** 2).mean().sqrt() / yt.std())
                    nlpd = float(
                        (
                            0.5 * ((mu - yt) / sd) ** 2 + sd.log() + 0.5 * math.log(2 * math.pi)
                        ).mean()
                    )
                    rows.append({"n": n, "seed": seed, "rmse": rmse, "nlpd": nlpd, "fit_s": dt})
            out[pname][kind] = {
                str(n): {
                    k: float(np.median([r[k] for r in rows if r["n"] == n]))
                    for k in ("rmse", "nlpd", "fit_s")
                }
                for n in sizes
            }
            print(pname, kind, json.dumps(out[pname][kind]), flush=True)
    return out


# -------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="20 seeds")
    mode.add_argument("--quick", action="store_true", help="smoke run: tiny budget, 1 seed")
    ap.add_argument("--seeds", type=int, help="number of seeds (default 5; 20 with --full)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    ap.add_argument("--problems", help="comma-separated subset of problems")
    ap.add_argument("--strategies", help="comma-separated strategies (default: all)")
    ap.add_argument("--budget-scale", type=float, default=1.0, help="scale every budget")
    ap.add_argument("--run-cpu-limit", type=float, help="stop a run after this many CPU s")
    ap.add_argument("--interface-truth", default=INTERFACE_TRUTH, help="module:function")
    ap.add_argument("--interface-campaign", help="campaign file for the interface problem")
    ap.add_argument(
        "--proposal-time",
        type=int,
        metavar="N",
        help="time one proposal after N observations (a third per fidelity); writes "
        "DIR/proposal_time.json",
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="instead of running, rebuild one report in --out from the steps.csv and "
        "report.json of earlier runs (e.g. one --full run per problem)",
    )
    ap.add_argument(
        "--compare-models",
        action="store_true",
        help="instead of the benchmark, score the model kinds on held-out target data",
    )
    args = ap.parse_args(argv)

    warnings.filterwarnings("ignore")
    if args.merge:
        merge(args.merge, args.out)
        print((args.out / "summary.md").read_text())
        return 0
    global RUN_CPU_LIMIT, SURROGATE_EPOCHS
    if args.run_cpu_limit:
        RUN_CPU_LIMIT = args.run_cpu_limit
    problems = make_problems(args.interface_truth, args.interface_campaign)
    if not args.problems:
        problems = {k: problems[k] for k in DEFAULT_PROBLEMS}
    seeds = args.seeds or (20 if args.full else 1 if args.quick else 5)
    strategies = _names(args.strategies) if args.strategies else list(DEFAULT_STRATEGIES)
    if args.quick:
        problems = {k: problems[k] for k in ("branin", "interface")}
        if not args.strategies:
            strategies = ["random", "sf_qlognei", "mf_gp", "mf_surrogate"]
        for p in problems.values():
            p.budget = 3.0
            p.campaign["initial_design"] = 3
            for par in p.campaign["parameters"]:
                if par["name"] == "modifier":
                    par["choices"] = [m for m in par["choices"] if m in QUICK_MODIFIERS]
        SURROGATE_EPOCHS = 20
    if args.problems:
        problems = {k: problems[k] for k in args.problems.split(",")}
    if args.full and "interface" in problems:
        problems["interface"].budget = INTERFACE_BUDGET_FULL
    for p in problems.values():
        p.budget *= args.budget_scale
        p.campaign["budget"] = p.budget  # the optimiser plans its initial design on it
        calibrate(p)

    if args.proposal_time:
        variants = _names(args.strategies) if args.strategies else PROPOSAL_TIME_VARIANTS
        res = proposal_time(problems, args.proposal_time, variants, repeats=1 if args.quick else 2)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "proposal_time.json").write_text(json.dumps(res, indent=2))
        return 0
    if args.compare_models:
        kinds = _names(args.strategies) if args.strategies else MODEL_KINDS
        res = compare_models(problems, (30, 90), args.seeds or 3, kinds)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "models.json").write_text(json.dumps(res, indent=2))
        return 0

    notes: list[str] = [
        f"seeds: {seeds}; target regret {TARGET_REGRET}; random runs {RANDOM_BUDGET_FACTOR}x "
        "the budget"
    ]
    for peer, module in PEERS.items():
        if peer in strategies and importlib.util.find_spec(module) is None:
            strategies.remove(peer)
            msg = (
                f"{peer}: skipped, not installed (pip install -e '.[peers]' or "
                f"pip install {'ax-platform' if peer == 'ax' else 'baybe'})"
            )
            notes.append(msg)
            print(f"note: {msg}", flush=True)
    skipped = [p for p in problems if not has_materials(problems[p])]
    if any(_parse_strategy(x)[0] == "mf_surrogate" for x in strategies) and skipped:
        msg = (
            f"mf_surrogate: not run on {', '.join(skipped)} (no interlayer choice for the "
            "materials surrogate to represent)"
        )
        notes.append(msg)
        print(f"note: {msg}", flush=True)
    _PROBLEMS.clear()
    _PROBLEMS.update(problems)
    tasks = [
        (p, s, seed, args.quick)
        for p in problems
        for s in strategies
        for seed in range(seeds)
        if not (_parse_strategy(s)[0] == "mf_surrogate" and p in skipped)
    ]
    for p in problems:  # pretrain once here; forked workers inherit the prepared surrogates
        for s in strategies:
            base, opts = _parse_strategy(s)
            if base == "mf_surrogate" and p not in skipped:
                t1 = time.perf_counter()
                prepared_surrogate(problems[p], opts.get("kind", "interface_gnn"))
                print(f"{p}: {s} prepared in {time.perf_counter() - t1:.0f} s", flush=True)
    # slowest first, so the pool stays busy to the end
    weight = {"baybe": 0, "ax": 1, "mf_surrogate": 2, "mf_gp": 2, "sf_qlognei": 3, "random": 9}
    tasks.sort(key=lambda t: (weight.get(_parse_strategy(t[1])[0], 2), t[0]))
    t0 = time.perf_counter()
    runs: list[Run] = []
    print(f"{len(tasks)} runs on {args.jobs} workers ...", flush=True)
    if args.jobs > 1:
        with mp.get_context("fork").Pool(args.jobs, maxtasksperchild=4) as pool:
            for i, run in enumerate(pool.imap_unordered(run_one, tasks), 1):
                runs.append(run)
                _progress(i, len(tasks), run, t0)
    else:
        for i, task in enumerate(tasks, 1):
            runs.append(run_one(task))
            _progress(i, len(tasks), runs[-1], t0)
    cpu = sum(r.cpu_s for r in runs)
    notes.append(
        f"wall time {time.perf_counter() - t0:.0f} s on {args.jobs} workers; "
        f"{cpu:.0f} CPU s in the runs; load average at the end {os.getloadavg()[0]:.1f}"
    )
    write_outputs(args.out, problems, runs, notes)
    print((args.out / "summary.md").read_text())
    return 0


def merge(dirs: list[Path], out: Path) -> None:
    """One report from earlier runs' ``steps.csv`` and ``report.json`` (see ``--merge``).

    Problems are rebuilt with the default truth and campaign, and their ``f_star``/``f_ref``
    read from the reports, so regrets are the runs' own. A run's CPU and wall time are the sums
    of its proposal times (the runs' totals are not in the CSV); failed runs, which have no
    steps, are listed in the notes.
    """
    problems = make_problems()
    runs: dict[tuple[str, str, int], Run] = {}
    notes: list[str] = []
    used: dict[str, Problem] = {}
    seen: dict[tuple[str, str, int], Path] = {}
    for d in dirs:
        rep = json.loads((d / "report.json").read_text())
        notes += [f"{d.name}: {n}" for n in rep["notes"]]
        for pname, prow in rep["problems"].items():
            problem = used.setdefault(pname, problems[pname])
            problem.f_star, problem.f_ref = prow["f_star"], prow["f_ref"]
            problem.budget = prow["budget"]
            for sname, srow in prow["strategies"].items():
                for err in srow.get("errors", []):
                    if err:
                        notes.append(f"{d.name}: {pname}/{sname} failed: {err}")
        with (d / "steps.csv").open() as fh:
            for row in csv.DictReader(fh):
                key = (row["problem"], row["strategy"], int(row["seed"]))
                if seen.setdefault(key, d) != d:
                    raise SystemExit(f"{'/'.join(map(str, key))} is in both {seen[key]} and {d}")
                if key not in runs:
                    factor = RANDOM_BUDGET_FACTOR if row["strategy"] == "random" else 1
                    runs[key] = Run(*key, budget=used[key[0]].budget * factor)
                step = Step.from_row(row)
                run = runs[key]
                run.steps.append(step)
                run.cpu_s += step.propose_cpu_s
                run.wall_s += step.propose_wall_s
    _PROBLEMS.clear()
    _PROBLEMS.update(used)
    write_outputs(out, used, list(runs.values()), notes)


def _progress(i: int, n: int, run: Run, t0: float) -> None:
    status = run.error
    if status is None:
        problem = _PROBLEMS[run.problem]
        c, hit = cost_to_target(run, run.budget)
        status = (
            f"{len(run.steps)} steps, target {'at ' + format(c, '.2f') if hit else 'not reached'}"
            f", final regret {regret_at(run, problem.budget):.4f}"
        )
    print(
        f"[{i}/{n} {time.perf_counter() - t0:6.0f}s] {run.problem}/{run.strategy}/seed{run.seed}: "
        f"{status}{' [' + run.error_note + ']' if run.error_note else ''} "
        f"({run.wall_s:.0f}s wall, {run.cpu_s:.0f}s CPU)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
