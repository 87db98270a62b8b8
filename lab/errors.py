"""The one error root of the ``lab`` package.

Every error a user can cause (a malformed campaign file, an unsafe set point, an unknown
device) derives from :class:`LabError`; the console prints its message without a traceback.
Builtin mix-ins let callers catch them as ``ValueError`` where that is the natural meaning.
"""

from __future__ import annotations


class LabError(Exception):
    """Root of every error raised by the ``lab`` package."""


class SpecError(LabError, ValueError):
    """A campaign or workcell file is invalid; the message names the field and the fix."""


class SafetyError(LabError, ValueError):
    """A set point lies outside the campaign's safety limits; nothing was sent."""


class WorkcellError(LabError):
    """A device named in the workcell cannot be used (unknown kind, unreachable port)."""


class ExperimentError(LabError):
    """An experiment failed on the bench; it is recorded as failed, never dropped."""


class AnalysisError(LabError, ValueError):
    """Raw readings could not be turned into the objective (e.g. a fit did not converge)."""


class ProcessError(LabError):
    """A process step cannot run as asked (e.g. the sample is not at the device's station)."""
