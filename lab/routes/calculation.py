"""``calculation``: the objective computed from the interface structure, not measured.

Its option ``calculator`` names the energy model. The campaign flow does not run calculation
fidelities on the bench: a campaign with one is refused at launch (it is used by the
optimiser benchmark and ``lab calculate``).
"""

from __future__ import annotations

from lab.routes._base import RouteKind
from lab.steps._base import Arg


class Calculation(RouteKind):
    """A computed estimate of the objective for the proposed interface."""

    name = "calculation"
    doc = "the objective computed from the interface structure"
    bench = False
    options = (Arg("calculator", None, "energy model (chgnet, simulated...)", default="chgnet"),)
