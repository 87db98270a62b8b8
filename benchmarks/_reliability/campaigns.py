"""Campaign files of the benchmark: the demo campaign with another budget, an anneal
(parameter and process step) and the gantry moves between stations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .common import ROOT


def demo_data() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())


ANNEAL_STEP: dict[str, Any] = {
    "step": "anneal",
    "device": "hotplate",
    "args": {"temperature": "$anneal_temperature_c", "time": "10 min"},
}
"""The process step the benchmark's anneal adds (the parameter is added with it)."""


def add_anneal(data: dict[str, Any], low: float, high: float) -> dict[str, Any]:
    """Add an anneal temperature parameter (``low``-``high`` degC) and the process step that
    consumes it (on the hotplate, after the process's other steps)."""
    data["parameters"].append(
        {
            "name": "anneal_temperature_c",
            "type": "continuous",
            "low": low,
            "high": high,
            "unit": "degC",
        }
    )
    data["process"].append(copy.deepcopy(ANNEAL_STEP))
    return data


def add_moves(data: dict[str, Any], devices: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Insert gantry moves so every step, and the target fidelity's measurement, runs at the
    station of its device in ``devices`` (a workcell whose gantry carries the sample); no
    change for a workcell without a gantry or without stations."""
    from lab.routes import ROUTES

    gantry = next((n for n, d in devices.items() if d["kind"] == "grbl"), None)
    if gantry is None or not any(d.get("station") for d in devices.values()):
        return data

    def station(role: str | None, kinds: tuple[str, ...] = ()) -> str | None:
        for n, d in devices.items():
            if (role is not None and role in (n, d.get("role"))) or (
                role is None and d["kind"] in kinds
            ):
                return d.get("station")
        return None

    process: list[dict[str, Any]] = []
    at: str | None = None
    for step in data["process"]:
        if step["step"] == "move":
            at = str(step["args"]["station"])
        else:
            where = station(step["device"])
            if where and where != at:
                process.append({"step": "move", "device": gantry, "args": {"station": where}})
                at = where
        process.append(step)
    target = data.get("target_fidelity")
    fid = next((f for f in data["fidelities"] if f["name"] == target), data["fidelities"][-1])
    where = station(fid.get("device"), ROUTES.get(fid["route"]).instruments)
    if where and where != at:
        process.append({"step": "move", "device": gantry, "args": {"station": where}})
    data["process"] = process
    return data


def campaign_data(
    *,
    budget: int | None = None,
    anneal: bool = False,
    devices: dict[str, dict[str, Any]] | None = None,
    max_consecutive_failures: int | None = None,
) -> dict[str, Any]:
    """The demo campaign, optionally with another budget, an anneal (parameter and process
    step), the moves a workcell with a gantry needs (``devices``) and another guard rail."""
    data = demo_data()
    if budget is not None:
        data["budget"] = budget
        data["initial_design"] = min(int(data.get("initial_design", 4)), max(1, budget - 1))
    if anneal:
        add_anneal(data, 60.0, 150.0)
    if devices is not None:
        add_moves(data, devices)
    if max_consecutive_failures is not None:
        data["max_consecutive_failures"] = max_consecutive_failures
    return data


def write_campaign(
    path: Path,
    *,
    budget: int,
    anneal: bool,
    devices: dict[str, dict[str, Any]] | None = None,
    max_consecutive_failures: int | None = None,
) -> Path:
    """The demo campaign with another budget, written to ``path`` (see :func:`campaign_data`):
    with ``anneal``, an anneal temperature parameter and the anneal step that consumes it;
    with ``devices``, the gantry moves between their stations."""
    data = campaign_data(
        budget=budget,
        anneal=anneal,
        devices=devices,
        max_consecutive_failures=max_consecutive_failures,
    )
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
