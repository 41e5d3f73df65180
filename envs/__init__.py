"""marl-lab environments; importing this package registers them by name."""

from marl.envs.matrix import NON_MONOTONIC_PAYOFF, OneStepMatrixGame, TwoStepGame
from marl.registry import register_env

register_env("matrix/one_step", OneStepMatrixGame)
register_env("matrix/two_step", TwoStepGame)

__all__ = ["NON_MONOTONIC_PAYOFF", "OneStepMatrixGame", "TwoStepGame"]
