"""The algorithm contract: what the training loop may call and read of a learner.

An algorithm is an object of pure functions over its own state pytree, in the
spirit of optax's ``GradientTransformation``: the loop owns the environments,
rollouts, devices, seeds, evaluation, logging and saving; the algorithm owns what
it learns from a rollout. Anything that satisfies :class:`Algorithm` trains in
:class:`marl.loop.Runner` without registration, which is also how a composite
learner is built from two others.

The loop reads only the state fields declared by :class:`AlgorithmState`
(``params`` for evaluation and checkpoints, ``env_steps`` for logging); every
other field is the algorithm's own.

Options: every registered algorithm has an options dataclass deriving from
:class:`AlgorithmOptions`. The Hydra app uses it as the schema of its ``algo``
node, so Hydra checks keys and types; :meth:`AlgorithmOptions.check` checks
values, once, with the same words from the command line and from Python.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax

from marl.options import OptionError
from marl.types import Array, Bootstrap, Observation, PRNGKey, Transition


@runtime_checkable
class AlgorithmState(Protocol):
    """The fields of an algorithm's state that the loop reads.

    ``params``: what acting needs (evaluation plays with them; checkpoints keep
    them apart so that another run can start from them). ``env_steps``: env-steps
    collected so far, over all devices (int32 scalar per seed).
    """

    params: Any
    env_steps: Array


@runtime_checkable
class Algorithm(Protocol):
    """A learner the loop can train.

    ``B`` is a batch of environments (``envs_per_device`` while training, the
    number of evaluation episodes while evaluating); ``update`` receives the
    rollout time-major, ``[T, B]``, as the loop recorded it. A learner whose state
    depends on ``B`` (a replay fed by ``B`` streams) may say what it was built for in
    an ``envs_per_device`` attribute; the Runner then refuses any other size. A
    learner with a replay names its state's replay fields in a ``replay_fields``
    attribute, so that checkpoints can leave them out (``arch.checkpoint_replay``).
    """

    def init(self, key: PRNGKey) -> AlgorithmState:
        """A fresh state: parameters, optimiser, replay, counters."""
        ...

    def initial_memory(self, batch_size: int) -> Any:
        """The acting memory of ``batch_size`` environments (RNN states; ``()`` if none)."""
        ...

    def act(
        self, state: Any, obs: Observation, memory: Any, key: PRNGKey, explore: bool
    ) -> tuple[Array, Any, Any]:
        """Joint actions ``[B, num_agents]`` for observations ``[B]``, the next memory,
        and extras the loop stores in the rollout's ``Transition.extras``."""
        ...

    def update(
        self,
        state: Any,
        rollout: Transition,
        key: PRNGKey,
        axis_name: str | None,
        bootstrap: Bootstrap,
    ) -> tuple[Any, dict[str, Array]]:
        """Learns from a rollout ``[T, B]`` that stopped at ``bootstrap``; gradients
        are averaged over ``axis_name`` (the device axis) when it is given."""
        ...


@runtime_checkable
class MultiObjectiveAlgorithm(Algorithm, Protocol):
    """A learner of a vector reward that can be asked to act on a preference.

    ``num_objectives``: the objectives it learns. ``initial_memory(batch_size,
    preference)`` gives the memory of acting on ``preference`` (``[num_objectives]``,
    on the simplex); greedy acting keeps it through the episode. Evaluation plays
    every preference of ``evaluation_preferences`` (``[G, num_objectives]``, a grid the
    learner's options size) this way and reports the front of their returns.
    """

    num_objectives: int
    evaluation_preferences: Any

    def initial_memory(self, batch_size: int, preference: Array | None = None) -> Any:
        """The acting memory of ``batch_size`` environments acting on ``preference``."""
        ...


@runtime_checkable
class MultiTaskAlgorithm(Protocol):
    """A learner of several tasks at once, each with its own envs and sizes.

    The loop steps every task's envs in lockstep and hands the learner one rollout
    per task. ``num_tasks``: how many; task ``k`` is the ``k``-th of the run's task
    set. ``initial_memory``, ``act`` and ``update`` are :class:`Algorithm`'s, told
    which task they serve (``update`` gets a tuple of rollouts ``[T, B]`` and of
    bootstraps, one per task). The loop trains every learner through this contract:
    a single-task :class:`Algorithm` is the set of one (:class:`SingleTask`).
    """

    num_tasks: int

    def init(self, key: PRNGKey) -> AlgorithmState:
        """A fresh state for every task."""
        ...

    def initial_memory(self, batch_size: int, task: int) -> Any:
        """The acting memory of ``batch_size`` environments of ``task``."""
        ...

    def act(
        self, state: Any, obs: Observation, memory: Any, key: PRNGKey, explore: bool, task: int
    ) -> tuple[Array, Any, Any]:
        """Joint actions ``[B, num_agents]`` of ``task``'s agents, the next memory, extras."""
        ...

    def update(
        self,
        state: Any,
        rollouts: tuple[Transition, ...],
        key: PRNGKey,
        axis_name: str | None,
        bootstraps: tuple[Bootstrap, ...],
    ) -> tuple[Any, dict[str, Array]]:
        """Learns from every task's rollout (each stopped at its bootstrap)."""
        ...


@runtime_checkable
class ReportsUpdateCosts(Protocol):
    """A learner built from parts whose updates cost differently (MANSA's IL and CL):
    a run logs what one update of each part costs when it starts."""

    def update_costs(
        self, env: Any, rollout_length: int, key: PRNGKey
    ) -> dict[str, dict[str, float]]:
        """``{part: {"flops": ..., "seconds": ...}}`` for one update of each part on a
        rollout of ``rollout_length`` steps of ``env``; ``{}`` when not measured."""
        ...


class SingleTask:
    """A single-task :class:`Algorithm` as a :class:`MultiTaskAlgorithm` of one task.

    It forwards every call unchanged (and every attribute the loop reads:
    ``replay_fields``, ``num_objectives``, ``evaluation_preferences``,
    ``envs_per_device``), so a learner trains and draws exactly as it would alone.
    """

    num_tasks = 1

    def __init__(self, algorithm: Algorithm):
        self.algorithm = algorithm

    def __getattr__(self, name: str) -> Any:
        if name == "algorithm":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.algorithm, name)

    def init(self, key: PRNGKey) -> Any:
        return self.algorithm.init(key)

    def initial_memory(self, batch_size: int, task: int = 0, preference: Any = None) -> Any:
        if preference is None:
            return self.algorithm.initial_memory(batch_size)
        return self.algorithm.initial_memory(batch_size, preference=preference)

    def act(
        self,
        state: Any,
        obs: Observation,
        memory: Any,
        key: PRNGKey,
        explore: bool,
        task: int = 0,
    ) -> tuple[Array, Any, Any]:
        return self.algorithm.act(state, obs, memory, key, explore)

    def update(
        self,
        state: Any,
        rollouts: tuple[Transition, ...],
        key: PRNGKey,
        axis_name: str | None,
        bootstraps: tuple[Bootstrap, ...],
    ) -> tuple[Any, dict[str, Array]]:
        (rollout,), (bootstrap,) = rollouts, bootstraps
        return self.algorithm.update(state, rollout, key, axis_name, bootstrap=bootstrap)


def as_multitask(algorithm: Algorithm | MultiTaskAlgorithm) -> MultiTaskAlgorithm:
    """``algorithm`` itself when it learns a task set, else :class:`SingleTask` of it."""
    if hasattr(algorithm, "num_tasks"):
        return algorithm  # type: ignore[return-value]
    return SingleTask(algorithm)  # type: ignore[return-value]


def count_env_steps(env_steps: Array, rollout: Transition, axis_name: str | None) -> Array:
    """``env_steps`` plus the steps of ``rollout`` ``[T, B]`` on every device."""
    num_steps, num_envs = rollout.action.shape[:2]
    num_devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)
    return env_steps + num_steps * num_envs * num_devices


_SCALARS = (int, float, bool, str)


@dataclasses.dataclass
class AlgorithmOptions:
    """Base of every algorithm's options; ``name`` is the registered name.

    Subclasses set ``name``'s default to their own name and add their options with
    defaults. ``check`` validates values and raises :class:`marl.options.OptionError`
    naming the first bad option; subclasses extend it.
    """

    name: str = ""
    #: Whether the learner learns from a vector reward (as many objectives as the env
    #: has); scalar learners are refused on multi-objective envs before they are built.
    multi_objective: ClassVar[bool] = False
    #: Whether the learner learns a set of tasks (a :class:`MultiTaskAlgorithm`, its
    #: factory given one env spec per task); others learn one task and are refused on
    #: a task set of more than one.
    multi_task: ClassVar[bool] = False

    def check(self, envs_per_device: int | None = None) -> None:
        """Raises ``OptionError`` for the first invalid value.

        ``envs_per_device`` (the environments one copy of the learner acts in, per
        device and seed), when given, is checked against options that must divide
        it.
        """
        default = type(self)().name
        if self.name != default:
            raise OptionError(
                "name",
                f"these are {default}'s options and cannot train {self.name!r}; choose "
                f"algo={self.name} (in Python: its own options class)",
            )
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            expected = hints[field.name]
            value = getattr(self, field.name)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                continue
            if expected in _SCALARS and (
                not isinstance(value, expected) or (expected is int and isinstance(value, bool))
            ):
                raise OptionError(field.name, f"expected {expected.__name__}, got {value!r}")


__all__ = [
    "Algorithm",
    "AlgorithmOptions",
    "AlgorithmState",
    "MultiObjectiveAlgorithm",
    "MultiTaskAlgorithm",
    "ReportsUpdateCosts",
    "SingleTask",
    "as_multitask",
    "count_env_steps",
]
