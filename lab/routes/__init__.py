"""Measurement routes: how each fidelity turns a sample into the objective.

Every module here (not starting with ``_``) defines route kinds (:class:`RouteKind`
subclasses), registered by their ``name``: adding a route is adding one module.
"""

from lab.registry import Registry, discover
from lab.routes._base import RouteKind

ROUTES: Registry[RouteKind] = Registry("route")
"""Every route by name."""

discover(ROUTES, __name__, RouteKind)

__all__ = ["ROUTES", "RouteKind"]
