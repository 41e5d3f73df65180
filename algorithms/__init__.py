"""marl-lab learners; importing this package registers them by name."""

from marl.algorithms.cmat import CMATConfig, make_cmat
from marl.algorithms.mappo import MAPPOConfig, make_ippo, make_mappo
from marl.algorithms.mat import MATConfig, make_mat
from marl.algorithms.value_decomposition import (
    LearnerConfig,
    QPLEXConfig,
    QTranConfig,
    ValueDecomposition,
    ValueDecompositionConfig,
    WeightedQMixConfig,
    make_cw_qmix,
    make_iql,
    make_ow_qmix,
    make_qmix,
    make_qplex,
    make_qtran,
    make_vdn,
)
from marl.registry import register_algorithm

register_algorithm("iql", make_iql, ValueDecompositionConfig)
register_algorithm("vdn", make_vdn, ValueDecompositionConfig)
register_algorithm("qmix", make_qmix, ValueDecompositionConfig)
register_algorithm("qplex", make_qplex, QPLEXConfig)
register_algorithm("cw_qmix", make_cw_qmix, WeightedQMixConfig)
register_algorithm("ow_qmix", make_ow_qmix, WeightedQMixConfig)
register_algorithm("qtran", make_qtran, QTranConfig)
register_algorithm("ippo", make_ippo, MAPPOConfig)
register_algorithm("mappo", make_mappo, MAPPOConfig)
register_algorithm("mat", make_mat, MATConfig)
register_algorithm("cmat", make_cmat, CMATConfig)

__all__ = [
    "CMATConfig",
    "LearnerConfig",
    "MAPPOConfig",
    "MATConfig",
    "QPLEXConfig",
    "QTranConfig",
    "ValueDecomposition",
    "ValueDecompositionConfig",
    "WeightedQMixConfig",
]
