"""Surrogate models: a GNN encoder of interfaces under a multi-fidelity GP (BoTorch Model API).

Pure computation (no Prefect, Bluesky, Ophyd or SQL). The public surface:

* :class:`Surrogate` / :class:`SurrogateConfig`: a pair representation (composition
  descriptors, bulk or interface GNN embeddings) under the multi-fidelity GP; ``prepare``
  (pretrains the encoder on cheap labels), ``fit``, ``predict``, ``save``/``load`` with a
  version hash; ``surrogate.model`` is the BoTorch ``Model`` for acquisition functions.
* :class:`InterfaceGP`: that ``Model`` (raw inputs :data:`RAW_COLUMNS`, fidelity last).
* :class:`PairEncoder`, :class:`EncoderConfig`, :func:`build_pair_table`: the GNN and its
  pretraining.
"""

from lab.model._encoder import EncoderConfig, GraphEncoder, PairEncoder
from lab.model._gp import RAW_COLUMNS, InterfaceGP, PairFeatures, PhysicsMean, gaussian_nlpd
from lab.model._pretrain import PairTable, PretrainConfig, build_pair_table, pair_graphs
from lab.model._surrogate import (
    FIDELITIES,
    KINDS,
    Surrogate,
    SurrogateConfig,
    descriptor_table,
    mismatch_table,
)

__all__ = [
    "FIDELITIES",
    "KINDS",
    "RAW_COLUMNS",
    "EncoderConfig",
    "GraphEncoder",
    "InterfaceGP",
    "PairEncoder",
    "PairFeatures",
    "PairTable",
    "PhysicsMean",
    "PretrainConfig",
    "Surrogate",
    "SurrogateConfig",
    "build_pair_table",
    "descriptor_table",
    "gaussian_nlpd",
    "mismatch_table",
    "pair_graphs",
]
