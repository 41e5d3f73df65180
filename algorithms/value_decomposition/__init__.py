"""Value decomposition: IQL, VDN, QMIX, QPLEX, weighted QMIX and QTRAN.

``learner.py`` holds the shared off-policy learner and the :class:`Objective`
protocol; each method group is a file: ``mixing.py`` (IQL, VDN, QMIX, QPLEX),
``weighted_qmix.py`` (CW-QMIX, OW-QMIX), ``qtran.py`` (QTRAN-base), ``momix.py``
(MO-MIX, multi-objective), ``outer_loop.py`` (its baseline, one QMIX per preference)
and ``multitask.py`` (MT-VDN and MT-QMIX: shared decision layers over several tasks).
"""

from marl.algorithms.value_decomposition.learner import (
    AGENT,
    ActingMemory,
    AgentMemory,
    LearnerBatch,
    Objective,
    StepValues,
    ValueDecomposition,
    ValueDecompositionOptions,
    ValueDecompositionState,
)
from marl.algorithms.value_decomposition.mixing import (
    IQLOptions,
    MixerObjective,
    QMIXOptions,
    QPLEXOptions,
    VDNOptions,
    make_iql,
    make_qmix,
    make_qplex,
    make_vdn,
)
from marl.algorithms.value_decomposition.momix import MOMixObjective, MOMIXOptions, make_momix
from marl.algorithms.value_decomposition.multitask import (
    MTQMIXOptions,
    MTVDNOptions,
    MultiTaskOptions,
    MultiTaskValueDecomposition,
    make_mt_qmix,
    make_mt_vdn,
)
from marl.algorithms.value_decomposition.outer_loop import (
    OuterLoop,
    OuterLoopQMIXOptions,
    make_qmix_outer_loop,
)
from marl.algorithms.value_decomposition.qtran import QTranObjective, QTRANOptions, make_qtran
from marl.algorithms.value_decomposition.weighted_qmix import (
    CWQMIXOptions,
    OWQMIXOptions,
    WeightedQMixObjective,
    WeightedQMIXOptions,
    make_cw_qmix,
    make_ow_qmix,
    weighted_qmix_weights,
)

__all__ = [
    "AGENT",
    "ActingMemory",
    "AgentMemory",
    "CWQMIXOptions",
    "IQLOptions",
    "LearnerBatch",
    "MOMIXOptions",
    "MOMixObjective",
    "MTQMIXOptions",
    "MTVDNOptions",
    "MixerObjective",
    "MultiTaskOptions",
    "MultiTaskValueDecomposition",
    "OWQMIXOptions",
    "OuterLoop",
    "OuterLoopQMIXOptions",
    "Objective",
    "QMIXOptions",
    "QPLEXOptions",
    "QTRANOptions",
    "QTranObjective",
    "StepValues",
    "VDNOptions",
    "ValueDecomposition",
    "ValueDecompositionOptions",
    "ValueDecompositionState",
    "WeightedQMIXOptions",
    "WeightedQMixObjective",
    "make_cw_qmix",
    "make_iql",
    "make_momix",
    "make_mt_qmix",
    "make_mt_vdn",
    "make_ow_qmix",
    "make_qmix",
    "make_qmix_outer_loop",
    "make_qplex",
    "make_qtran",
    "make_vdn",
    "weighted_qmix_weights",
]
