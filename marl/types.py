"""Data types shared by environments, algorithms and the training loop."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
from flax import struct

Array = chex.Array
PRNGKey = chex.PRNGKey


class Observation(NamedTuple):
    """What every marl-lab environment observes at a step.

    Attributes:
        agents_view: ``(num_agents, obs_dim)`` float, each agent's own observation.
        action_mask: ``(num_agents, num_actions)`` bool, the actions available now.
        global_state: ``(state_dim,)`` float, the team-level state that centralised
            critics and mixers see (one copy, not tiled per agent).
        step_count: scalar int32, steps taken in the current episode (0 at its start).
    """

    agents_view: Array
    action_mask: Array
    global_state: Array
    step_count: Array


@struct.dataclass
class EnvSpec:
    """The sizes an algorithm needs to build its networks."""

    num_agents: int = struct.field(pytree_node=False)
    num_actions: int = struct.field(pytree_node=False)
    obs_dim: int = struct.field(pytree_node=False)
    state_dim: int = struct.field(pytree_node=False)
    time_limit: int = struct.field(pytree_node=False)
    num_objectives: int = struct.field(pytree_node=False, default=1)


class Transition(NamedTuple):
    """One vectorised environment step as the loop records it (leading axes ``[T, B]``).

    ``obs`` is what the agents saw when acting; ``done`` marks the last step of an
    episode (the next ``obs`` in the stream then belongs to a new episode) and
    ``terminated`` the subset of those that ended for real rather than by the time
    limit. ``extras`` holds whatever ``act`` returned for the learner to keep.
    ``won`` (bool) marks the steps that ended an episode in a win (the env's
    ``won``); ``None`` where a learner builds transitions of its own. ``mask``
    (bool) marks the steps the learner trains on, where a composite learner hands
    each of its parts only the steps that part acted in (MANSA); ``None``: every
    step. Every single-task learner honours it in its losses; the other steps still
    feed its bootstraps and recurrent states.
    """

    obs: Observation
    action: Array
    reward: Array
    done: Array
    terminated: Array
    extras: Any
    won: Array | None = None
    mask: Array | None = None


class Bootstrap(NamedTuple):
    """Where a rollout stopped: what the agents would act on next (leading axis ``[B]``).

    On-policy learners bootstrap their value targets from it; off-policy learners,
    which read whole sequences from replay, ignore it.
    """

    obs: Observation
    memory: Any
