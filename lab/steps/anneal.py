"""``anneal``: the hotplate holds the sample at a temperature for a time, then switches off."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from lab.steps._base import Arg, StepContext, StepKind


class Anneal(StepKind):
    """Heat to ``temperature``, hold ``time`` (of the workcell's clock), heater off."""

    name = "anneal"
    doc = "the hotplate holds the sample at a temperature for a time"
    instruments = ("ika_namur",)
    args = (
        Arg(
            "temperature",
            "degC",
            "set point",
            above=0.0,
            limit="max_temperature_c",
            device_limit="max_temp_c",
        ),
        Arg("time", "min", "hold at the set point", default=10.0, at_least=0.0),
    )

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext
    ) -> Generator[Any, Any, Any]:
        """Heat until at temperature, read, hold, read, heater off."""
        from bluesky import plan_stubs as bps

        yield from bps.mv(device, float(values["temperature"]))
        yield from bps.trigger_and_read([device], name=f"step{ctx.index}_anneal_start")
        yield from bps.sleep(float(values["time"]) * 60.0 / ctx.time_scale)
        yield from bps.trigger_and_read([device], name=f"step{ctx.index}_anneal_end")
        yield from bps.mv(device.heating, 0)
