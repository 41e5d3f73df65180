"""marl-lab environments; importing this package registers them by name."""

from marl.envs.football.env import (
    FOOTBALL_PATTERN,
    Football,
    football_accepts,
    make_football,
    make_mo_football,
)
from marl.envs.jaxmarl_adapters import (
    MPE_PATTERN,
    SMAX,
    SMAX_PATTERN,
    MPESimpleSpread,
    make_mpe,
    make_smax,
    mpe_accepts,
    smax_accepts,
)
from marl.envs.jumanji_adapters import (
    LBF_PATTERN,
    RWARE_PATTERN,
    LevelBasedForaging,
    RobotWarehouse,
    lbf_accepts,
    make_lbf,
    make_rware,
    rware_accepts,
)
from marl.envs.matrix import NON_MONOTONIC_PAYOFF, OneStepMatrixGame, TwoStepGame
from marl.envs.mo_matrix import ParetoMatrixGame, ParetoSumGame
from marl.envs.smac.env import SMAC, SMAC_PATTERN, make_mo_smac, make_smac, smac_accepts
from marl.envs.smac.v2 import SMACV2_PATTERN, make_smacv2, smacv2, smacv2_accepts
from marl.registry import register_env, register_env_family

register_env("matrix/one_step", OneStepMatrixGame)
register_env("matrix/two_step", TwoStepGame)
register_env("mo-matrix/pareto", ParetoMatrixGame)
register_env("mo-matrix/pareto_sum", ParetoSumGame)
register_env_family("lbf", lbf_accepts, make_lbf, LBF_PATTERN)
register_env_family("rware", rware_accepts, make_rware, RWARE_PATTERN)
register_env_family("smax", smax_accepts, make_smax, SMAX_PATTERN)
register_env_family("mpe", mpe_accepts, make_mpe, MPE_PATTERN)
register_env_family("smac", smac_accepts, make_smac, SMAC_PATTERN)
register_env_family("mo-smac", smac_accepts, make_mo_smac, SMAC_PATTERN)
register_env_family("smacv2", smacv2_accepts, make_smacv2, SMACV2_PATTERN)
register_env_family("football", football_accepts, make_football, FOOTBALL_PATTERN)
register_env_family("mo-football", football_accepts, make_mo_football, FOOTBALL_PATTERN)

__all__ = [
    "Football",
    "NON_MONOTONIC_PAYOFF",
    "SMAC",
    "SMAX",
    "LevelBasedForaging",
    "MPESimpleSpread",
    "OneStepMatrixGame",
    "ParetoMatrixGame",
    "ParetoSumGame",
    "RobotWarehouse",
    "TwoStepGame",
    "smacv2",
]
