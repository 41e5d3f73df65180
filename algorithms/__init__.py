"""marl-lab learners; importing this package registers them by name."""

from marl.algorithms.value_decomposition import (
    ValueDecomposition,
    ValueDecompositionConfig,
    make_iql,
    make_qmix,
    make_vdn,
)
from marl.registry import register_algorithm

register_algorithm("iql", make_iql, ValueDecompositionConfig)
register_algorithm("vdn", make_vdn, ValueDecompositionConfig)
register_algorithm("qmix", make_qmix, ValueDecompositionConfig)

__all__ = ["ValueDecomposition", "ValueDecompositionConfig"]
