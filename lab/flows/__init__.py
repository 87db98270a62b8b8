"""Prefect flows: the one place that wires optimiser, devices, plans, store and analysis.

``campaign_flow`` (:mod:`lab.flows.campaign`) loops until the budget is spent::

    rebuild the optimiser from the store -> propose -> make each sample with the campaign's
    process and measure it with its fidelity's route (:mod:`lab.flows.experiment`: a
    RunEngine whose documents go to the store) -> analyse the raw readings into the
    objective -> (the next proposal refits the model)

The database is the source of truth: the optimiser is rebuilt from it at every step, so a
crashed campaign resumes where it stopped. Failures are recorded, never dropped; a campaign
stops ``failed`` after ``max_consecutive_failures`` in a row. :mod:`lab.flows.calculation`
computes the cheap fidelity for a library on a task runner.
"""

from lab.flows._events import ProgressListener, progress_listener, store_for
from lab.flows.calculation import calculate, calculation_flow, calculation_task_runner
from lab.flows.campaign import (
    BatchDecision,
    campaign_flow,
    failure_streak,
    proposal_of,
    propose,
    publish_artifacts,
    rebuild_optimizer,
    reconcile,
)
from lab.flows.experiment import (
    RetryRecorder,
    analyse,
    driver_error_of,
    experiment_flow,
    instrument_of,
    measure,
    process_context,
    realised_of,
    run_experiment,
    validated,
    values_of,
)

__all__ = [
    "BatchDecision",
    "ProgressListener",
    "RetryRecorder",
    "analyse",
    "calculate",
    "calculation_flow",
    "calculation_task_runner",
    "campaign_flow",
    "driver_error_of",
    "experiment_flow",
    "failure_streak",
    "instrument_of",
    "measure",
    "process_context",
    "progress_listener",
    "proposal_of",
    "propose",
    "publish_artifacts",
    "realised_of",
    "rebuild_optimizer",
    "reconcile",
    "run_experiment",
    "store_for",
    "validated",
    "values_of",
]
