"""``dispense``: a syringe pump dispenses a volume onto the sample at a rate."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from lab.steps._base import Arg, StepContext, StepKind


class Dispense(StepKind):
    """Dispense ``volume`` at ``rate`` from the pump named by the step's ``device``.

    A zero volume skips the step (the design space may switch a liquid off).
    """

    name = "dispense"
    doc = "a syringe pump dispenses a volume onto the sample"
    instruments = ("ne1000",)
    args = (
        Arg(
            "volume",
            "uL",
            "volume dispensed",
            at_least=0.0,
            limit="max_dispense_volume_ul",
            device_limit="max_volume_ul",
        ),
        Arg(
            "rate",
            "uL/min",
            "dispense rate",
            default=100.0,
            above=0.0,
            limit="max_pump_rate_ul_min",
            device_limit="max_rate_ul_min",
        ),
    )

    def skip(self, values: Mapping[str, Any]) -> bool:
        """Nothing to dispense."""
        return float(values["volume"]) <= 0.0

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext
    ) -> Generator[Any, Any, Any]:
        """Set the rate, dispense (finishes when the pump confirms), read the pump."""
        from bluesky import plan_stubs as bps

        yield from bps.mv(device.rate, float(values["rate"]))
        yield from bps.mv(device, float(values["volume"]))
        yield from bps.trigger_and_read([device], name=f"step{ctx.index}_dispense")
