"""Closed-loop self-driving lab agent for material interfaces.

The public surface is deliberately small: campaign files are loaded with
:func:`lab.spec.load_campaign`, optimisation goes through :class:`lab.optimize.Optimizer`,
and everything else is reached through the ``lab`` console.
"""

from lab.errors import LabError

__all__ = ["LabError", "__version__"]
__version__ = "0.1.0"
