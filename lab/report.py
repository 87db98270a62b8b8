"""Campaign reports: an HTML page with PNG plots, CSV/Parquet export and artifact payloads.

Everything here reads the store and writes files; nothing changes a campaign. The page is
self-contained (inline CSS, relative links to the PNGs beside it, no scripts) and every piece
of text taken from the database is HTML-escaped.

* :func:`write_report` -- ``DIR/index.html`` with four plots: best objective against
  cumulative cost, fidelity usage over time, surrogate parity and surrogate calibration on
  held-out experiments, then a table of every experiment with why it was chosen; and
  ``DIR/report.json`` with the key figures (for ``--json``).
* :func:`export_campaign` -- one row per experiment as CSV (standard library) or Parquet
  (needs ``pyarrow``).
* :func:`report_artifacts` -- the markdown and table payloads for Prefect artifacts (this
  module imports no Prefect; ``lab.flows`` attaches them).

The surrogate check is honest held-out validation: a fresh BoTorch ``SingleTaskGP`` on the
encoded parameters (in the log domain when the objective is log-transformed) is fitted
without each fold of the experiments analysed at the target fidelity and predicts that fold.
Leave-one-out up to 10 points, 10-fold cross-validation above.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import statistics
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lab.errors import LabError
from lab.readmodel import (
    FIXED_COLUMNS,
    TAIL_COLUMNS,
    CampaignData,
    experiment_rows,
    load_campaign_data,
    param_columns,
    param_key,
    utc,
    why_chosen,
)
from lab.store import ExperimentState, Store

__all__ = [
    "MIN_SURROGATE_POINTS",
    "PLOTS",
    "CampaignData",
    "SurrogateCheck",
    "experiment_rows",
    "export_campaign",
    "load_campaign_data",
    "report_artifacts",
    "report_summary",
    "surrogate_check",
    "write_report",
]

MIN_SURROGATE_POINTS = 5
"""Fewest analysed target-fidelity experiments for the held-out surrogate check."""

PLOTS = {
    "best_vs_cost.png": "Best objective against cumulative cost",
    "fidelity_usage.png": "Fidelity usage over time",
    "surrogate_parity.png": "Surrogate parity on held-out experiments",
    "surrogate_calibration.png": "Surrogate calibration on held-out experiments",
}
"""The PNG files of a report and their titles, in page order."""

_Z90 = statistics.NormalDist().inv_cdf(0.95)  # half-width of a central 90 % interval, in sigma

_STATE_COLOURS = {
    "analysed": "#2ca02c",
    "measured": "#17becf",
    "running": "#1f77b4",
    "approved": "#9467bd",
    "proposed": "#7f7f7f",
    "failed": "#d62728",
    "abandoned": "#ff7f0e",
}


# --------------------------------------------------------------------------- data


# --------------------------------------------------------------------------- surrogate check


@dataclass
class SurrogateCheck:
    """Held-out predictions of a surrogate refitted without each fold.

    Values are in the model's domain (natural log of the objective when
    ``log_domain``). ``measured[i]`` was held out when ``mean[i], std[i]`` were predicted
    (``std`` includes the observation noise).
    """

    numbers: list[int]
    measured: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    log_domain: bool
    folds: int

    @property
    def n(self) -> int:
        """Number of held-out points."""
        return len(self.numbers)

    @property
    def z(self) -> np.ndarray:
        """Standardised held-out errors ``|measured - mean| / std``."""
        return np.abs(self.measured - self.mean) / np.maximum(self.std, 1e-12)

    def coverage(self, level: float) -> float:
        """Fraction of held-out points inside the central ``level`` predictive interval."""
        half = statistics.NormalDist().inv_cdf(0.5 + level / 2)
        return float(np.mean(self.z <= half))

    @property
    def coverage90(self) -> float:
        """Fraction of held-out points inside the 90 % predictive interval."""
        return self.coverage(0.9)

    @property
    def rmse(self) -> float:
        """Root-mean-square held-out error in the model's domain."""
        return float(np.sqrt(np.mean((self.measured - self.mean) ** 2)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary with every held-out prediction (model domain)."""
        return {
            "points": self.n,
            "folds": self.folds,
            "domain": "log" if self.log_domain else "linear",
            "rmse": self.rmse,
            "coverage90": self.coverage90,
            "held_out": [
                {"number": k, "measured": float(y), "mean": float(m), "std": float(s)}
                for k, y, m, s in zip(self.numbers, self.measured, self.mean, self.std, strict=True)
            ],
        }


def _encode(space: Any, params: dict[str, Any]) -> list[float] | None:
    """Unit-cube encoding (the optimiser's design space), or ``None`` if params don't fit."""
    try:
        return space.encode(params).tolist()
    except (KeyError, TypeError, ValueError):
        return None


def surrogate_check(data: CampaignData, *, max_folds: int = 10) -> SurrogateCheck | str:
    """Cross-validate a GP surrogate on the experiments analysed at the target fidelity.

    Returns:
        The held-out predictions, or a sentence saying why the check was skipped.
    """
    from lab.optimize._space import DesignSpace

    obj = data.spec.objective
    space = DesignSpace(data.spec)
    rows: list[tuple[int, list[float], float]] = []
    for e in data.analysed(data.target):
        y = float(e.objective)  # type: ignore[arg-type]
        if obj.log_transform and y <= 0:
            continue
        x = _encode(space, e.params)
        if x is not None:
            rows.append((e.seq + 1, x, math.log(y) if obj.log_transform else y))
    if len(rows) < MIN_SURROGATE_POINTS:
        return (
            f"Surrogate parity and calibration skipped: {len(rows)} experiment(s) analysed at "
            f"the target fidelity '{data.target}', at least {MIN_SURROGATE_POINTS} are needed "
            "to hold points out."
        )
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    X = torch.tensor([r[1] for r in rows], dtype=torch.double)
    Y = torch.tensor([[r[2]] for r in rows], dtype=torch.double)
    n = len(rows)
    k = min(n, max_folds)
    order = np.random.default_rng(data.seed).permutation(n)
    fold_of = np.empty(n, dtype=int)
    fold_of[order] = np.arange(n) % k
    mean, std = np.zeros(n), np.zeros(n)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(data.seed)
        for f in range(k):
            test = torch.tensor(np.flatnonzero(fold_of == f))
            train = torch.tensor(np.flatnonzero(fold_of != f))
            model = SingleTaskGP(X[train], Y[train], outcome_transform=Standardize(m=1))
            try:
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            except Exception as exc:  # noqa: BLE001 - reported on the page, not fatal
                return f"Surrogate check skipped: the GP fit failed on fold {f + 1} ({exc})."
            model.eval()
            with torch.no_grad():
                post = model.posterior(X[test], observation_noise=True)
                mean[test.numpy()] = post.mean.squeeze(-1).numpy()
                std[test.numpy()] = post.variance.clamp_min(1e-18).sqrt().squeeze(-1).numpy()
    return SurrogateCheck(
        numbers=[r[0] for r in rows],
        measured=Y.squeeze(-1).numpy(),
        mean=mean,
        std=std,
        log_domain=obj.log_transform,
        folds=k,
    )


# --------------------------------------------------------------------------- plots


def _figure(w: float, h: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", metadata={"Software": None})
    os.replace(tmp, path)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _wide(values: Any) -> bool:
    """Whether positive values span at least a decade (worth a log axis)."""
    v = np.asarray(list(values), dtype=float)
    return bool(v.size and v.min() > 0 and v.max() / v.min() >= 10)


def _log_axis(axis: Any) -> None:
    """Log scale with plain tick labels at 1, 2, 5 x 10^k."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _objective_label(data: CampaignData) -> str:
    o = data.spec.objective
    return f"{o.name.replace('_', ' ')} ({o.unit})"


def _plot_best(data: CampaignData, path: Path) -> None:
    fig = _figure(8, 4.2)
    ax = fig.add_subplot()
    o = data.spec.objective
    curve = data.best_curve()
    points = [
        (data.cumulative_cost[int(e.id)], float(e.objective))  # type: ignore[arg-type]
        for e in data.analysed(data.target)
        if int(e.id) in data.cumulative_cost  # type: ignore[arg-type]
    ]
    if not curve:
        _empty(ax, f"no experiment analysed at the target fidelity '{data.target}' yet")
    else:
        xs = [c for c, _, _ in curve]
        ys = [b for _, b, _ in curve]
        ax.step(xs, ys, where="post", color="#1f77b4", lw=2.5, label="best so far")
        ax.scatter(*zip(*points, strict=True), color="#1f77b4", alpha=0.45, s=28, zorder=3,
                   label=f"each result ({data.target})")  # fmt: skip
        failed = [
            data.cumulative_cost[int(e.id)]  # type: ignore[arg-type]
            for e in data.started()
            if e.state in (ExperimentState.FAILED.value, ExperimentState.ABANDONED.value)
        ]
        if failed:
            for i, c in enumerate(failed):
                ax.axvline(c, color="#d62728", alpha=0.35, lw=1, ls=":",
                           label="failed / abandoned" if i == 0 else None)  # fmt: skip
        if o.log_transform and _wide([*ys, *(p[1] for p in points)]):
            ax.set_yscale("log")
            _log_axis(ax.yaxis)
        last_cost, last_best, last_no = curve[-1]
        ax.annotate(f"{last_best:.4g} (#{last_no})", (last_cost, last_best),
                    textcoords="offset points", xytext=(-4, 8), ha="right")  # fmt: skip
    ax.axvline(data.budget, color="k", lw=1, ls="--", label=f"budget {data.budget:g}")
    ax.set_xlim(0, max(data.budget, data.spent) * 1.03)
    ax.set_xlabel("cumulative cost (budget units)")
    ax.set_ylabel(_objective_label(data))
    ax.set_title(f"{data.name}: best {o.name.replace('_', ' ')} ({o.direction})")
    ax.grid(alpha=0.3)
    if curve:
        ax.legend(loc="best", fontsize=8)
    _save(fig, path)


def _plot_fidelity(data: CampaignData, path: Path) -> None:
    fig = _figure(8, 4.8)
    ax1, ax2 = fig.subplots(2, 1)
    names = list(data.spec.fidelity_names)
    names += sorted({e.fidelity for e in data.experiments} - set(names))
    colours = {n: f"C{i}" for i, n in enumerate(names)}
    if not data.experiments:
        _empty(ax1, "no experiments yet")
        _empty(ax2, "no experiments yet")
        _save(fig, path)
        return
    seqs = [0, *(e.seq + 1 for e in data.experiments)]
    for n in names:
        counts = [0, *np.cumsum([e.fidelity == n for e in data.experiments])]
        ax1.step(seqs, counts, where="post", color=colours[n], lw=2, marker="o", ms=3, label=n)
    for e in data.experiments:
        ax1.scatter(e.seq + 1, 0, marker="|", s=80, color=_STATE_COLOURS.get(e.state, "k"))
    from matplotlib.ticker import MaxNLocator

    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("experiment number (proposal order); ticks at 0 coloured by state")
    ax1.set_ylabel("experiments")
    ax1.set_title("experiments per fidelity")
    ax1.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    present = [st for st in _STATE_COLOURS if any(e.state == st for e in data.experiments)]
    handles, labels = ax1.get_legend_handles_labels()
    handles += [
        Line2D([], [], color=_STATE_COLOURS[st], marker="|", ls="", ms=10) for st in present
    ]
    labels += present
    ax1.legend(handles, labels, loc="upper left", fontsize=7, ncol=2)
    started = data.started()
    if started:
        total = [data.cumulative_cost[int(e.id)] for e in started]  # type: ignore[arg-type]
        stacks = [
            np.cumsum([float(e.cost) if e.fidelity == n else 0.0 for e in started]) for n in names
        ]
        ax2.stackplot(
            [0.0, *total],
            [[0.0, *s] for s in stacks],
            labels=names,
            colors=[colours[n] for n in names],
            alpha=0.8,
        )
        ax2.set_xlim(0, max(data.budget, data.spent))
        ax2.legend(loc="upper left", fontsize=8)
    else:
        _empty(ax2, "nothing has run yet")
    ax2.set_xlabel("cumulative cost (budget units)")
    ax2.set_ylabel("cost spent")
    ax2.set_title("budget spent per fidelity")
    ax2.grid(alpha=0.3)
    _save(fig, path)


def _plot_parity(data: CampaignData, check: SurrogateCheck | str, path: Path) -> None:
    fig = _figure(5, 4.5)
    ax = fig.add_subplot()
    if isinstance(check, str):
        _empty(ax, check)
        _save(fig, path)
        return
    f = np.exp if check.log_domain else (lambda v: v)
    y, m = f(check.measured), f(check.mean)
    lo, hi = f(check.mean - _Z90 * check.std), f(check.mean + _Z90 * check.std)
    inside = check.z <= _Z90
    for mask, colour, label in ((inside, "#1f77b4", "inside"), (~inside, "#d62728", "outside")):
        if mask.any():
            ax.errorbar(y[mask], m[mask], yerr=[m[mask] - lo[mask], hi[mask] - m[mask]],
                        fmt="o", color=colour, ecolor=colour, alpha=0.8, capsize=3,
                        label=f"{label} 90 % interval ({int(mask.sum())})")  # fmt: skip
    span = np.concatenate([y, lo, hi])
    a, b = float(span.min()), float(span.max())
    ax.plot([a, b], [a, b], color="k", lw=1, ls="--", label="y = x")
    if check.log_domain and _wide(span):
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis(ax.xaxis)
        _log_axis(ax.yaxis)
    ax.set_xlabel(f"measured {_objective_label(data)}")
    ax.set_ylabel("held-out prediction")
    cv = "leave-one-out" if check.folds == check.n else f"{check.folds}-fold"
    ax.set_title(f"surrogate parity ({cv}, n={check.n})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def _plot_calibration(check: SurrogateCheck | str, path: Path) -> None:
    fig = _figure(5, 4.5)
    ax = fig.add_subplot()
    if isinstance(check, str):
        _empty(ax, check)
        _save(fig, path)
        return
    levels = np.linspace(0.05, 0.99, 60)
    observed = [check.coverage(float(p)) for p in levels]
    ax.plot([0, 1], [0, 1], color="k", lw=1, ls="--", label="perfect calibration")
    ax.plot(levels, observed, color="#1f77b4", lw=2, label="observed")
    ax.scatter([0.9], [check.coverage90], color="#d62728", s=60, zorder=3,
               label=f"90 % interval holds {check.coverage90:.0%}")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("nominal coverage of the predictive interval")
    ax.set_ylabel("fraction of held-out points inside")
    ax.set_title(f"surrogate calibration (n={check.n})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


# --------------------------------------------------------------------------- rows


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# --------------------------------------------------------------------------- export


def export_campaign(
    db_url: str | Store, campaign_id: int, fmt: Literal["csv", "parquet"], out: Path
) -> Path:
    """Write one row per experiment of a campaign (see :func:`experiment_rows`).

    Args:
        db_url: Database URL (or an open store).
        campaign_id: Campaign id.
        fmt: ``csv`` (standard library) or ``parquet`` (needs ``pyarrow``).
        out: Output file, or an existing folder to write ``campaign-<id>.<fmt>`` into.

    Returns:
        The file written (written to a temporary name, then renamed: never half-written).

    Raises:
        LabError: Unknown format, missing ``pyarrow`` for Parquet, unknown database or
            campaign. Nothing is written then.
    """
    if fmt not in ("csv", "parquet"):
        raise LabError(f"unknown export format '{fmt}': use csv or parquet")
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise LabError(
                "Parquet export needs the pyarrow package: install it with "
                "`pip install pyarrow`, or export with --format csv"
            ) from None
    data = load_campaign_data(db_url, campaign_id)
    out = Path(out)
    if out.is_dir():
        out = out / f"campaign-{campaign_id}.{fmt}"
    if not out.parent.is_dir():
        raise LabError(f"{out.parent}: no such folder; create it or choose another --out")
    rows = experiment_rows(data)
    columns = FIXED_COLUMNS + [param_key(p) for p in param_columns(data)] + TAIL_COLUMNS
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if fmt == "csv":
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=columns)
                w.writeheader()
                w.writerows(rows)
        else:
            table = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in columns})
            table = table.select(columns)
            for name in ("created_at", "started_at", "updated_at"):
                i = table.schema.get_field_index(name)
                ts = pa.array(
                    [None if v is None else datetime.fromisoformat(v) for v in table[name].to_pylist()],
                    type=pa.timestamp("us", tz="UTC"),
                )  # fmt: skip
                table = table.set_column(i, name, ts)
            pq.write_table(table, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# --------------------------------------------------------------------------- report


def _summary_facts(data: CampaignData) -> list[tuple[str, str]]:
    o = data.spec.objective
    states = Counter(e.state for e in data.experiments)
    best = data.best()
    facts = [
        ("campaign", f"{data.name} (id {data.campaign_id}, {data.status})"),
        (
            "interface",
            f"{data.spec.interface.substrate} | {data.spec.interface.other_phase}"
            + (f" ({data.spec.interface.description})" if data.spec.interface.description else ""),
        ),
        ("objective", f"{o.direction} {o.name} ({o.unit})"),
        ("budget", f"{data.spent:g} of {data.budget:g} cost units spent"),
        (
            "experiments",
            f"{len(data.experiments)} ("
            + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            + ")"
            if data.experiments
            else "none yet",
        ),
        (
            "fidelities",
            ", ".join(
                f"{f.name} (cost {f.cost:g}{', target' if f.name == data.target else ''})"
                for f in data.spec.fidelities
            ),
        ),
    ]
    if best is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        facts.append(
            ("best", f"{best.objective:.4g} {o.unit} (experiment {best.seq + 1}: {params})")
        )
    else:
        facts.append(("best", f"no experiment analysed at the target fidelity '{data.target}'"))
    return facts


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:16px 24px;color:#222}
h1{font-size:1.5em;margin:0 0 8px}
h2{font-size:1.15em;margin:20px 0 6px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure{margin:0}
figure img{display:block;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
.note{background:#fff6d6;border-left:4px solid #e0b000;padding:4px 8px;margin:6px 0}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f2f2f2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td,tr.abandoned td{background:#fdecea}
.small{font-size:.8em;color:#666}
"""


def _e(v: Any) -> str:
    return html.escape(_fmt(v), quote=True)


def _html(
    data: CampaignData,
    check: SurrogateCheck | str,
    sizes: dict[str, tuple[int, int]],
    generated: str,
) -> str:
    o = data.spec.objective
    params = param_columns(data)
    units = {p.name: getattr(p, "unit", "") for p in data.spec.parameters}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(data.name)}: campaign {data.campaign_id} report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(data.name)} &mdash; campaign {data.campaign_id}</h1>",
    ]
    if data.spec.description:
        parts.append(f"<p>{_e(data.spec.description)}</p>")
    parts.append('<dl class="facts">')
    for k, v in _summary_facts(data):
        parts.append(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>")
    parts.append("</dl>")
    if isinstance(check, str):
        parts.append(f'<p class="note">{_e(check)}</p>')
    else:
        parts.append(
            f"<p>Surrogate (BoTorch SingleTaskGP, {'log' if check.log_domain else 'linear'} "
            f"objective) on {check.n} held-out experiments at '{_e(data.target)}': "
            f"{check.coverage90:.0%} inside the 90&nbsp;% predictive interval, held-out RMSE "
            f"{check.rmse:.3g}{' (natural log)' if check.log_domain else ' ' + _e(o.unit)}.</p>"
        )
    captions = {
        "best_vs_cost.png": "Best result at the target fidelity against the budget spent; "
        "dots are individual results, dotted red lines failed or abandoned experiments.",
        "fidelity_usage.png": "Top: how many experiments used each fidelity, by proposal "
        "order (tick colour: state). Bottom: budget spent per fidelity.",
        "surrogate_parity.png": "Each target-fidelity experiment predicted by a GP fitted "
        "without it (bars: 90 % predictive interval).",
        "surrogate_calibration.png": "Observed against nominal coverage of the held-out "
        "predictive intervals; on the diagonal the uncertainty is honest.",
    }
    parts.append('<h2>Plots</h2><div class="plots">')
    for fname, title in PLOTS.items():
        w, h = sizes[fname]
        parts.append(
            f'<figure id="{fname.removesuffix(".png")}" style="width:{w}px">'
            f'<img src="{fname}" width="{w}" '
            f'height="{h}" alt="{_e(title)}"><figcaption><b>{_e(title)}.</b> '
            f"{_e(captions[fname])}</figcaption></figure>"
        )
    parts.append("</div>")
    parts.append("<h2>Experiments and why each was chosen</h2>")
    if not data.experiments:
        parts.append("<p>No experiments yet.</p>")
    else:
        head = ["#", "state", "fidelity", "cost"]
        head += [f"{p} ({units[p]})" if units.get(p) else p for p in params]
        head += [f"{o.name} ({o.unit})", "strategy", "acquisition value", "model version"]
        head += ["why chosen", "failure reason", "started (UTC)"]
        parts.append("<table><thead><tr>")
        parts.extend(f"<th>{_e(h)}</th>" for h in head)
        parts.append("</tr></thead><tbody>")
        for e in data.experiments:
            cells = [
                (e.seq + 1, True),
                (e.state, False),
                (e.fidelity, False),
                (float(e.cost), True),
                *((e.params.get(p), True) for p in params),
                (e.objective, True),
                (e.strategy, False),
                (e.acquisition_value, True),
                (e.model_version, False),
                (why_chosen(e), False),
                (e.failure_reason, False),
                (utc(e.started_at).strftime("%Y-%m-%d %H:%M:%S") if e.started_at else "", False),
            ]
            parts.append(f'<tr class="{_e(e.state)}">')
            parts.extend(
                f'<td class="num">{_e(v)}</td>' if num else f"<td>{_e(v)}</td>" for v, num in cells
            )
            parts.append("</tr>")
        parts.append("</tbody></table>")
    parts.append(
        f'<p class="small">Generated {_e(generated)} from {_e(data.database)}. '
        "Numbers are as stored; nothing on this page changes the campaign.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(db_url: str | Store, campaign_id: int, out_dir: Path) -> Path:
    """Write a campaign's HTML report and its PNG plots.

    Args:
        db_url: Database URL (or an open store).
        campaign_id: Campaign id.
        out_dir: Folder for ``index.html`` and the PNGs of :data:`PLOTS` (created if missing;
            only those files are replaced).

    Returns:
        The path of ``index.html`` (written last, so its presence means a complete report).

    Raises:
        LabError: If the database or campaign does not exist.
    """
    from lab._runtime import configure_threads

    configure_threads()
    data = load_campaign_data(db_url, campaign_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LabError(f"{out_dir} is a file; choose a folder for the report")
    out_dir.mkdir(parents=True, exist_ok=True)
    check = surrogate_check(data)
    _plot_best(data, out_dir / "best_vs_cost.png")
    _plot_fidelity(data, out_dir / "fidelity_usage.png")
    _plot_parity(data, check, out_dir / "surrogate_parity.png")
    _plot_calibration(check, out_dir / "surrogate_calibration.png")
    from PIL import Image

    sizes = {}
    for fname in PLOTS:
        with Image.open(out_dir / fname) as im:
            sizes[fname] = im.size
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    summary = report_summary(data)
    summary["surrogate"] = {"skipped": check} if isinstance(check, str) else check.to_dict()
    summary["plots"] = list(PLOTS)
    summary["generated"] = generated
    tmp = out_dir / ".report.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "report.json")
    index = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(_html(data, check, sizes, generated), encoding="utf-8")
    os.replace(tmp, index)
    return index


# --------------------------------------------------------------------------- artifacts


def report_summary(data: CampaignData) -> dict[str, Any]:
    """JSON-friendly key figures of a campaign (what ``report.json`` holds, less the plots)."""
    best = data.best()
    states = Counter(e.state for e in data.experiments)
    return {
        "campaign_id": data.campaign_id,
        "name": data.name,
        "status": data.status,
        "budget": data.budget,
        "spent": data.spent,
        "objective": {
            "name": data.spec.objective.name,
            "unit": data.spec.objective.unit,
            "direction": data.spec.objective.direction,
        },
        "target_fidelity": data.target,
        "experiments": len(data.experiments),
        "states": dict(sorted(states.items())),
        "fidelities": dict(sorted(Counter(e.fidelity for e in data.experiments).items())),
        "best": None
        if best is None
        else {"number": best.seq + 1, "objective": best.objective, "params": dict(best.params)},
    }


def report_artifacts(db_url: str | Store, campaign_id: int) -> dict[str, Any]:
    """Payloads for Prefect artifacts (attach them with ``prefect.artifacts``).

    Returns:
        ``{"summary": markdown, "convergence": markdown, "experiments": [row dicts]}``;
        the rows are JSON-safe (numbers, strings, ``None``) for ``create_table_artifact``.
        No surrogate refit happens here, so it is cheap enough to call after every batch.
    """
    data = load_campaign_data(db_url, campaign_id)
    o = data.spec.objective
    summary = [f"# {data.name}: campaign {data.campaign_id}", ""]
    summary += [f"- **{k}**: {_md(v)}" for k, v in _summary_facts(data)]
    conv = [
        f"# {data.name}: best {o.name} so far ({data.target})",
        "",
        f"| cumulative cost | best {o.name} ({_md(o.unit)}) | from experiment |",
        "|---:|---:|---:|",
        *(f"| {c:g} | {b:.4g} | {n} |" for c, b, n in data.best_curve()),
    ]
    if not data.best_curve():
        conv += ["", f"No experiment analysed at the target fidelity '{data.target}' yet."]
    table = []
    for r in experiment_rows(data):
        row = {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in r.items()
            if k not in ("campaign_id", "campaign", "key", "objective_name", "direction")
        }
        table.append(row)
    return {"summary": "\n".join(summary), "convergence": "\n".join(conv), "experiments": table}


def _md(v: Any) -> str:
    """Escape text for a markdown table or list (pipes, asterisks, angle brackets)."""
    s = _fmt(v)
    for ch in ("\\", "|", "*", "_", "`", "<", ">"):
        s = s.replace(ch, "\\" + ch)
    return s
