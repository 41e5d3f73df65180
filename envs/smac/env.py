"""SMAC on the JAX battle simulator: ``smac/<map>`` (and, with SMACv2's generator,
``smacv2/<scenario>``).

The environment composes, as Jumanji composes generators and observers:

* a generator (:mod:`marl.envs.smac.generators`): the scenario's teams, start
  positions, terrain and per-unit facts; SMAC's fixed maps, or SMACv2's random
  teams (:mod:`marl.envs.smac.v2`);
* an observer (:mod:`marl.envs.smac.observer`): the action mask, observation and
  global state of SMAC v1, with SMACv2's additions when asked;
* an opponent (:mod:`marl.envs.smac.opponent`): the built-in opponent at a
  difficulty level, or a policy on the mirrored side;
* the rules (:mod:`marl.envs.smac.rules`): orders from actions, outcome, reward.

Observations, global state, actions, reward and episode end follow SMAC v1 with its
default flags (the shared reference, sections 2 and 3). An episode ends when one
side's fighting units are gone or after the map's step limit (a time-limit cut,
not a loss, but never a win).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jumanji.types import TimeStep, restart

from marl.env import (
    MultiAgentEnv,
    count_invalid,
    play_as_fallback,
    preference_weights,
    team_timestep,
)
from marl.envs.smac import rules, sim
from marl.envs.smac.generators import Generator, MapGenerator, observer_for
from marl.envs.smac.maps import SMAC_MAPS, MapSpec
from marl.envs.smac.opponent import (
    BuiltInOpponent,
    Mirror,
    OpponentPolicy,
    difficulty_level,
)
from marl.envs.smac.rules import NUM_FIXED_ACTIONS, RewardSettings
from marl.types import Array, Observation, PRNGKey

__all__ = ["NUM_FIXED_ACTIONS", "SMAC", "SMACState", "make_mo_smac", "make_smac"]


@struct.dataclass
class SMACState:
    battle: sim.Battle
    last_action: Array  # [n_agents] int32
    step_count: Array
    key: PRNGKey  # the built-in opponent's or the opponent policy's randomness
    opponent_last_action: Array  # [n_enemies] int32; -1 unless a policy controls them


class SMAC(MultiAgentEnv):
    """A SMAC scenario on the JAX simulator; see the module docstring.

    Args:
        scenario: a SMAC map name, its :class:`MapSpec`, or any generator (SMACv2's
            random teams: :func:`marl.envs.smac.v2.smacv2`).
        reward_sparse: +1 for a win, -1 for a loss, 0 otherwise.
        reward_only_positive: the shaped reward counts only damage dealt.
        substeps: simulator sub-steps per agent step.
        difficulty: the built-in opponent's level, 1-10 (7 is SMAC's).
        opponent_policy: ``policy(observation, key) -> actions`` playing the enemies
            on their mirrored observation, instead of the built-in opponent.
        own_position: the agent's own ``x, y`` in its observation (SMACv2).
        positive_reward: ``"abs"`` (SMAC v1) or ``"clip"`` (SMACv2) of a step's
            shaped total with ``reward_only_positive``.
        weapon_delay: SC2's random delay of -1 to +2 game loops on every shot's
            cooldown (its main source of randomness in a fight); False fires on exact
            cooldowns, so a SMAC episode against the built-in opponent at a difficulty
            without random orders is fully determined by the actions.
        spawn_jitter: on SMAC's fixed maps, a random offset of up to this radius added
            to every unit's start position each episode (0: SC2's placement, the same
            every episode, as in SMAC).
        multi_objective: a vector reward of two objectives, ``damage_dealt`` (SMAC's
            shaped reward) and ``health_kept`` (minus the team's own losses, scaled
            the same way: -20 when every unit dies); :mod:`marl.envs.smac.rules`.
        weights: with ``multi_objective``, a fixed preference over the two objectives
            (non-negative, summing to 1): the reward is their weighted sum, a scalar.
    """

    def __init__(
        self,
        scenario: str | MapSpec | Generator = "3m",
        reward_sparse: bool = False,
        reward_only_positive: bool = True,
        substeps: int = 4,
        difficulty: int = 7,
        opponent_policy: OpponentPolicy | None = None,
        *,
        own_position: bool = False,
        positive_reward: str = "abs",
        weapon_delay: bool = True,
        spawn_jitter: float = 0.0,
        multi_objective: bool = False,
        weights: list[float] | None = None,
    ):
        if isinstance(scenario, (str, MapSpec)):
            scenario = MapGenerator(scenario, spawn_jitter)
        elif spawn_jitter:
            raise ValueError("spawn_jitter applies to SMAC's fixed maps, not to this generator")
        if opponent_policy is not None and not callable(opponent_policy):
            raise ValueError("opponent_policy must be a function (observation, key) -> actions")
        if positive_reward not in rules.POSITIVE_REWARDS:
            raise ValueError(
                f"positive_reward must be one of {rules.POSITIVE_REWARDS}, got {positive_reward!r}"
            )
        if multi_objective and reward_sparse:
            raise ValueError(
                "multi_objective splits SMAC's shaped reward; reward_sparse cannot be used with it"
            )
        if weights is not None and not multi_objective:
            raise ValueError("weights scalarise the multi-objective reward: set multi_objective")
        self.multi_objective = multi_objective
        self.weights = (
            None if weights is None else preference_weights(weights, rules.OBJECTIVE_NAMES)
        )
        if multi_objective and weights is None:
            self.num_objectives = len(rules.OBJECTIVE_NAMES)
            self.objective_names = rules.OBJECTIVE_NAMES
            self.hypervolume_reference = rules.HYPERVOLUME_REFERENCE
        self.generator = generator = scenario
        self.substeps = substeps
        self.weapon_delay = bool(weapon_delay)
        self.opponent_policy = opponent_policy
        self.settings = RewardSettings(reward_sparse, reward_only_positive, positive_reward)
        self.num_agents, self.num_enemies = generator.num_agents, generator.num_enemies
        self.time_limit = generator.time_limit
        level = difficulty_level(difficulty)
        self.mechanics = sim.mechanics_for(generator.possible_unit_types)._replace(
            attack_move_sight=level.attack_move_sight,
            # Policy-controlled opponents only act on orders, like the agents.
            stock_team=1 if opponent_policy is None else -1,
        )
        self.observer = observer_for(generator, own_position)
        self.builtin = BuiltInOpponent(generator, difficulty)
        self.mirror = Mirror(generator, own_position, self.settings)
        layout = self.observer.layout
        self.num_actions, self.obs_dim, self.state_dim = (
            layout.num_actions,
            layout.obs_dim,
            layout.state_dim,
        )
        super().__init__()

    def __repr__(self) -> str:
        return f"SMAC({self.generator!r})"

    # ------------------------------------------------------------------ reset
    def reset(self, key: PRNGKey) -> tuple[SMACState, TimeStep]:
        battle, key, order_key = self.generator.reset(key)
        battle = self.builtin.initial_orders(battle, order_key)
        if self.opponent_policy is not None:  # the policy gives the opponents' orders
            enemies = slice(self.num_agents, None)
            battle = battle.replace(
                order=battle.order.at[enemies].set(sim.ORDER_STOP),
                order_unit=battle.order_unit.at[enemies].set(sim.NO_TARGET),
                order_point=battle.order_point.at[enemies].set(battle.position[enemies]),
            )
        state = SMACState(
            battle=battle,
            last_action=jnp.full(self.num_agents, -1, jnp.int32),  # no action yet: zeros
            step_count=jnp.int32(0),
            key=key,
            opponent_last_action=jnp.full(self.num_enemies, -1, jnp.int32),
        )
        extras = {"won": jnp.float32(0.0), "invalid_actions": jnp.int32(0)}
        if self.opponent_policy is not None:
            extras["opponent_reward"] = jnp.float32(0.0)
        timestep = restart(self.observation(state), extras=extras, shape=self.num_agents)
        return state, timestep.replace(reward=jnp.zeros(self.reward_spec.shape, jnp.float32))

    # ------------------------------------------------------------------- step
    def step(self, state: SMACState, action: Array) -> tuple[SMACState, TimeStep]:
        """One agent step against the built-in opponent, or the ``opponent_policy``."""
        if self.opponent_policy is None:
            return self._step(state, action, None)
        key, policy_key = jax.random.split(state.key)
        opponent_action = self.opponent_policy(self.opponent_observation(state), policy_key)
        return self._step(state.replace(key=key), action, opponent_action)

    def step_with_opponent(
        self, state: SMACState, action: Array, opponent_action: Array
    ) -> tuple[SMACState, TimeStep]:
        """One step with the opponents' actions given (self-play); needs an env built with
        an ``opponent_policy`` (the built-in opponent would give them orders too)."""
        if self.opponent_policy is None:
            raise ValueError("step_with_opponent needs an env built with an opponent_policy")
        return self._step(state, action, opponent_action)

    def _step(
        self, state: SMACState, action: Array, opponent_action: Array | None
    ) -> tuple[SMACState, TimeStep]:
        generator, n = self.generator, self.num_agents
        battle = state.battle
        roster = generator.roster(battle)
        mask = self.observer.action_mask(battle, roster)
        invalid = count_invalid(mask, action)
        action = play_as_fallback(mask, action, self.fallback_action)
        battle = rules.apply_actions(battle, action, n, roster)
        num_units = battle.unit_type.shape[0]
        delay_words = sim.weapon_delay_words(self.substeps) if self.weapon_delay else 0
        key, opponent_key, words = split_with_bits(state.key, delay_words * num_units)
        opponent_last_action = state.opponent_last_action
        held = None
        if opponent_action is not None:
            battle, opponent_last_action = self.mirror.apply_actions(battle, opponent_action)
        else:
            battle, held = self.builtin.orders(battle, opponent_key, generator.unit_data(battle))
        before = battle
        delays = None
        if self.weapon_delay:
            delays = sim.weapon_delays_from_bits(
                words.reshape(delay_words, num_units), self.substeps
            )
        battle, _, _ = sim.advance(
            battle,
            sim.Terrain(
                jnp.asarray(generator.walkable), jnp.asarray(generator.cliff_level, jnp.int32)
            ),
            self.substeps,
            data=generator.unit_data(battle),
            mechanics=self.mechanics,
            weapon_delay=delays,
        )
        if held is not None:  # one step's hold or focus-fire order ends with the step
            battle = self.builtin.end_step(battle, held)
        step_count = state.step_count + 1
        won, lost, draw = rules.outcome(battle, n, roster)
        reward = rules.reward(
            before, battle, won, lost, n, generator.max_reward(roster), self.settings
        )
        if self.multi_objective:
            reward = jnp.stack([reward, rules.own_losses(before, battle, n, roster)])
            if self.weights is not None:
                reward = jnp.dot(jnp.asarray(self.weights), reward)
        terminated = won | lost | draw
        truncated = ~terminated & (step_count >= self.time_limit)
        state = SMACState(battle, action.astype(jnp.int32), step_count, key, opponent_last_action)
        extras = {"won": won.astype(jnp.float32), "invalid_actions": invalid}
        if opponent_action is not None:
            extras["opponent_reward"] = self.mirror.reward(before, battle, won, lost)
        timestep = team_timestep(
            reward, self.observation(state), terminated, truncated, extras, self.num_agents
        )
        return state, timestep

    # ------------------------------------------------------------ observation
    def observation(self, state: SMACState) -> Observation:
        """The agents' observation of ``state``."""
        roster = self.generator.roster(state.battle)
        return self.observer.observe(state.battle, state.last_action, state.step_count, roster)

    def opponent_observation(self, state: SMACState) -> Observation:
        """The opponents' SMAC observation of ``state``: their own units play the agents'
        part (observation, action mask and global state in the same layout)."""
        return self.mirror.observation(state.battle, state.opponent_last_action, state.step_count)

    # ---------------------------------------------------------------- render
    def render(self, state: SMACState) -> np.ndarray:
        """An RGB frame (``uint8 [H, W, 3]``, host side) of one unbatched ``state``.

        Terrain, units with health and shield bars, attacks and heals of the last
        step and a header; see :mod:`marl.envs.smac.render`.
        """
        from marl.envs.smac.render import render_frame

        return render_frame(self, state)

    def render_episode(self, states: list[SMACState]) -> list[np.ndarray]:
        """RGB frames of an episode's states, all framed on the box around the units that
        fought in it (the same view in every frame); see :mod:`marl.envs.smac.render`."""
        from marl.envs.smac.render import render_episode

        return render_episode(self, [jax.device_get(state) for state in states])


def split_with_bits(key: PRNGKey, num_words: int) -> tuple[PRNGKey, PRNGKey, Array]:
    """Two new keys and ``num_words`` random uint32 words from one draw on ``key``.

    What ``split`` followed by ``bits`` gives, in one call of the PRNG: on XLA:CPU each
    call is a loop of its own, a large share of a small batch's step.
    """
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    key_words = (jax.random.key_data(key) if typed else key).shape[-1]
    words = jax.random.bits(key, (2 * key_words + num_words,), jnp.uint32)
    keys = words[: 2 * key_words].reshape(2, key_words)
    if typed:
        keys = jax.random.wrap_key_data(keys, impl=jax.random.key_impl(key))
    return keys[0], keys[1], words[2 * key_words :]


SMAC_PATTERN = "{" + ",".join(sorted(SMAC_MAPS)) + "}"


def smac_accepts(task: str) -> bool:
    return task in SMAC_MAPS


def make_smac(task: str, **kwargs) -> SMAC:
    return SMAC(task, **kwargs)


def make_mo_smac(task: str, **kwargs) -> SMAC:
    """``mo-smac/<map>``: SMAC with the two-objective reward (``multi_objective``)."""
    return SMAC(task, **{"multi_objective": True, **kwargs})
