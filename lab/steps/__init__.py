"""Process steps: the registered kinds a campaign's ``process:`` is made of.

Every module here (not starting with ``_``) defines step kinds (:class:`StepKind`
subclasses), registered by their ``name``: adding a step kind is adding one module.
"""

from lab.registry import Registry, discover
from lab.steps._base import Arg, Binding, StepContext, StepKind, bind

STEPS: Registry[StepKind] = Registry("step kind")
"""Every step kind by name."""

discover(STEPS, __name__, StepKind)

__all__ = ["STEPS", "Arg", "Binding", "StepContext", "StepKind", "bind"]
