"""The climbing game (Claus and Boutilier 1998): two agents, three actions, one step.

Payoff (rows: agent 0's action, columns: agent 1's)::

    [[ 11, k,  0],
     [  k, 7,  6],
     [  0, 0,  5]]

with the miscoordination penalty ``k = -30`` by default. The optimum (11) sits next
to the penalties, so learners that average over their partner's exploration
drift to the safe 7 or 5. ``register()`` is the plugin's entry point.
"""

from __future__ import annotations

from marl.envs.matrix import OneStepMatrixGame
from marl.registry import register_env


class ClimbingGame(OneStepMatrixGame):
    """The climbing game with miscoordination penalty ``penalty`` (negative)."""

    def __init__(self, penalty: float = -30.0):
        if penalty >= 0:
            raise ValueError(f"penalty must be negative, got {penalty}")
        super().__init__(((11.0, penalty, 0.0), (penalty, 7.0, 6.0), (0.0, 0.0, 5.0)))
        self.penalty = penalty


def register() -> None:
    """Registers ``coordination/climbing`` with marl-lab."""
    register_env("coordination/climbing", ClimbingGame)
