"""Google Research Football's scenarios on the JAX simulator: ``football/<scenario>``.

The interface follows GRF's (the shared reference, sections 5, 6 and 8):

* **actions**: GRF's default set of 19, with its stickiness: ``0`` idle (changes
  nothing), ``1..8`` a direction (left, top-left, top, top-right, right,
  bottom-right, bottom, bottom-left; "top" is ``-y``), ``9`` long pass, ``10`` high
  pass, ``11`` short pass, ``12`` shot, ``13`` sprint, ``14`` release direction,
  ``15`` release sprint, ``16`` sliding, ``17`` dribble, ``18`` release dribble.
  Directions, sprint and dribble persist until released; passes, shots and slides
  act once (a shot pressed on consecutive steps charges, as holding GRF's button
  does: it fires when let go or after five steps). A held direction runs at 5 m/s
  (3.5 dribbling, top speed sprinting);
* **action mask** (``mask_ball_actions``, on by default as in the common MARL set-ups):
  passes and shots only for the agent with the ball, sliding only without it and not
  while already sliding; everything else is always available;
* **observations** (``representation``): ``simple115`` is GRF's ``simple115`` vector
  from each agent's point of view (its player's bit set in the active one-hot), in
  GRF's observation units (``x / 54.4``, ``y / 83.6``, directions per step);
  ``egocentric`` is a compact relative encoding (own state, the ball, every other
  player relative to the agent, possession, the agent's sticky actions). The global
  state is ``simple115`` without the active bits, plus the fraction of time left;
* **rewards** (``rewards``): ``scoring`` (+1 for a goal, -1 for conceding) or
  ``scoring,checkpoints`` (also GRF's ten 0.1 checkpoints towards goal while an agent
  has the ball, the rest paid out on scoring), one team reward;
* **multi-objective** (``multi_objective``, ``mo-football/<scenario>``): a vector
  reward of ``attack`` (the reward above) and ``possession`` (``1 / time_limit`` for
  every step that ends with the ball at the agents' feet, so keeping it for a whole
  episode is worth 1). They conflict: a shot or a risky pass gives the ball up to
  score, and a goal ends the episode; keeping the ball means not shooting. With
  ``weights`` the reward is their weighted sum, a scalar. The hypervolume's
  reference point is (-1, 0): conceding without ever having the ball;
* **control** (``control``): ``grf`` (default) hands the agents' control around the
  team's controllable players as GRF's engine does, keeper included
  (:mod:`marl.envs.football.control`): the receiver of a pass, a free teammate much
  nearer the ball or on it; each agent's observation marks the player it drives now
  (``active`` in ``simple115``, "own" in ``egocentric``). ``fixed`` keeps the
  scenario's ``controlled`` players for good;
* **episode end**: academy scenarios end at a goal, when the ball leaves the pitch
  and (all but ``academy_corner``) when the team in possession changes, or after 400
  steps (a time-limit cut); full games (``5_vs_5``) restart play instead and end only
  at the time limit;
* **extras**: ``goals`` and ``goals_conceded`` so far, ``possession`` (1 the agents'
  team has the ball, -1 the opponents, 0 loose), ``scorer`` (the player who scored
  this step, -1 none), ``end_reason`` (:data:`END_REASONS`), ``won`` (more goals
  than the opponents) and ``invalid_actions`` (how many agents chose an action the
  mask forbids; with ``mask_ball_actions`` such an action is played as idle).
"""

from __future__ import annotations

import math
from collections.abc import Callable

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
from marl.envs.football import ai, sim
from marl.envs.football.control import (
    CONTROL_MODES,
    Control,
    fixed_control,
    start_control,
    start_players,
    update_control,
)
from marl.envs.football.scenarios import (
    X_SCALE,
    Y_SCALE,
    Scenario,
    get_scenario,
    scenario_names,
)
from marl.types import Array, Observation, PRNGKey

NUM_ACTIONS = 19
IDLE, LONG_PASS, HIGH_PASS, SHORT_PASS, SHOT = 0, 9, 10, 11, 12
SPRINT, RELEASE_DIRECTION, RELEASE_SPRINT, SLIDING, DRIBBLE, RELEASE_DRIBBLE = range(13, 19)
ACTION_NAMES = (
    "idle", "left", "top_left", "top", "top_right", "right", "bottom_right", "bottom",
    "bottom_left", "long_pass", "high_pass", "short_pass", "shot", "sprint",
    "release_direction", "release_sprint", "sliding", "dribble", "release_dribble",
)  # fmt: skip
# Unit vectors of directions 1..8 (index 0: no direction).
_DIAGONAL = math.sqrt(0.5)
DIRECTION_X = np.array([0, -1, -_DIAGONAL, 0, _DIAGONAL, 1, _DIAGONAL, 0, -_DIAGONAL], np.float32)
DIRECTION_Y = np.array([0, 0, -_DIAGONAL, -1, -_DIAGONAL, 0, _DIAGONAL, 1, _DIAGONAL], np.float32)
KICK_OF_ACTION = {LONG_PASS: sim.LONG_PASS, HIGH_PASS: sim.HIGH_PASS,
                  SHORT_PASS: sim.SHORT_PASS, SHOT: sim.SHOT}  # fmt: skip

END_REASONS = ("running", "scored", "conceded", "out_of_play", "possession_change", "time_limit")
NUM_CHECKPOINTS = 10
CHECKPOINT_REWARD = 0.1
REPRESENTATIONS = ("simple115", "egocentric")
REWARDS = ("scoring", "scoring,checkpoints")
#: The objectives of the multi-objective reward, in order.
OBJECTIVE_NAMES = ("attack", "possession")
#: The hypervolume's reference point: conceding, never having had the ball.
HYPERVOLUME_REFERENCE = (-1.0, 0.0)
NUM_GAME_MODES = 7
MAX_TEAM = 11


@struct.dataclass
class FootballState:
    match: sim.Match
    direction: Array  # int32 [A] sticky direction (0 none, 1..8)
    sprint: Array  # bool [A]
    dribble: Array  # bool [A]
    checkpoints: Array  # int32 checkpoints collected this episode
    step_count: Array
    key: PRNGKey
    control: Control  # the player each agent drives now


@struct.dataclass
class TwoSidedState:
    """A match with a policy on each side: the play, and the opponents' sticky actions."""

    inner: FootballState
    opponent_direction: Array  # int32 [A]
    opponent_sprint: Array  # bool [A]
    opponent_dribble: Array  # bool [A]

    @property
    def step_count(self) -> Array:
        return self.inner.step_count


class Football(MultiAgentEnv):
    """One football scenario; see the module docstring for the interface.

    With ``opponent_policy`` (a ``(Observation, key) -> actions`` function) the right
    team's players that mirror the agents' are driven by it instead of the scripted AI
    (a match between two policies; :meth:`step_with_opponent` takes their actions from
    outside instead). They see the game as GRF shows it to the right team: left and
    right swapped and both axes mirrored, so they too attack towards ``+x``, and their
    directions are mirrored back. Only scenarios whose two teams are alike (``5_vs_5``)
    can be played this way.
    """

    fallback_action = IDLE

    def __init__(
        self,
        scenario: str | Scenario = "academy_3_vs_1_with_keeper",
        representation: str = "simple115",
        rewards: str = "scoring,checkpoints",
        mask_ball_actions: bool = True,
        difficulty: float | None = None,
        num_substeps: int = 5,
        multi_objective: bool = False,
        weights: list[float] | None = None,
        opponent_policy: Callable[[Observation, PRNGKey], Array] | None = None,
        control: str = "grf",
    ):
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        if representation not in REPRESENTATIONS:
            raise ValueError(
                f"representation must be one of {', '.join(REPRESENTATIONS)}, "
                f"got '{representation}'"
            )
        if control not in CONTROL_MODES:
            raise ValueError(f"control must be one of {', '.join(CONTROL_MODES)}, got '{control}'")
        if rewards not in REWARDS:
            raise ValueError(f"rewards must be one of {', '.join(REWARDS)}, got '{rewards}'")
        if difficulty is not None and not 0.0 <= difficulty <= 1.0:
            raise ValueError(f"difficulty must lie in [0, 1], got {difficulty}")
        if not isinstance(num_substeps, int) or num_substeps < 1:
            raise ValueError(f"num_substeps must be a positive integer, got {num_substeps}")
        if weights is not None and not multi_objective:
            raise ValueError("weights scalarise the multi-objective reward: set multi_objective")
        self.multi_objective = multi_objective
        self.weights = None if weights is None else preference_weights(weights, OBJECTIVE_NAMES)
        if multi_objective and weights is None:
            self.num_objectives = len(OBJECTIVE_NAMES)
            self.objective_names = OBJECTIVE_NAMES
            self.hypervolume_reference = HYPERVOLUME_REFERENCE
        self.representation = representation
        self.checkpoint_rewards = rewards == "scoring,checkpoints"
        self.mask_ball_actions = mask_ball_actions
        self.num_substeps = num_substeps
        self.statics = sim.statics(self.scenario, difficulty)
        self.formations = sim.formations(self.scenario) if self.scenario.restarts else None
        self.control = control
        # The players the agents drive at the start with fixed control.
        self.controlled = np.asarray(self.scenario.controlled, np.int32)
        self.controllable = np.zeros(self.scenario.num_players, bool)
        self.controllable[list(self.scenario.selectable)] = True
        self.num_left = self.scenario.num_left
        # The players GRF's engine hands the agents at reset (control="grf").
        self.start_players = start_players(
            self.num_left, self.controllable[: self.num_left], len(self.controlled)
        )
        self.num_right = len(self.scenario.right)
        self.num_agents = len(self.controlled)
        self.num_actions = NUM_ACTIONS
        self.time_limit = self.scenario.time_limit
        self.obs_dim = 115 if representation == "simple115" else self._egocentric_dim()
        self.state_dim = 115 - MAX_TEAM + 1
        self.opponent_policy = opponent_policy
        if opponent_policy is not None:
            if not _alike(self.scenario):
                raise ValueError(
                    f"opponent_policy needs a scenario whose teams are alike (5_vs_5); "
                    f"'{self.scenario.name}' has {self.num_left} players against "
                    f"{self.num_right} in other roles"
                )
            # The right team's agents keep their players (GRF's hand-over is the left's).
            self.opponent_controlled = self.num_left + self.controlled
            # The right team's side seen from its own end: players [right, left].
            self._mirror_order = np.concatenate(
                [np.arange(self.num_left, 2 * self.num_left), np.arange(self.num_left)]
            )
        super().__init__()

    def __repr__(self) -> str:
        return f"Football({self.scenario.name})"

    def _egocentric_dim(self) -> int:
        others = self.num_left - 1 + self.num_right
        # own 6, ball 6, possession 4, others 4 each, goal 2, sticky 10, kicking 1, time 1
        return 6 + 6 + 4 + 4 * others + 2 + 10 + 1 + 1

    # --- reset and step -------------------------------------------------------------

    def reset(self, key: PRNGKey) -> tuple[FootballState, TimeStep]:
        match_key, key = jax.random.split(key)
        match = sim.initial_match(self.scenario, self.statics)
        if self.formations is not None:
            # GRF alternates the kick-off between episodes; here a coin decides.
            kicking = jax.random.bernoulli(match_key).astype(jnp.int32)
            match = match.replace(
                x=jnp.asarray(self.formations.x)[kicking],
                y=jnp.asarray(self.formations.y)[kicking],
                game_mode=jnp.int32(sim.KICK_OFF),
            )
        num_agents = self.num_agents
        if self.control == "grf":
            handed_out = start_control(self.statics, self.start_players)
            # GRF's reset observation shows its hand-out; its first frame of play then
            # switches (to the carrier, where the hand-out missed him) before the first
            # action is played: the state carries the switched control.
            control = update_control(handed_out, match, self.statics, None, self.controllable)
        else:
            handed_out = control = fixed_control(match, self.statics, self.controlled)
        state = FootballState(
            match=match,
            direction=jnp.zeros((num_agents,), jnp.int32),
            sprint=jnp.zeros((num_agents,), bool),
            dribble=jnp.zeros((num_agents,), bool),
            checkpoints=jnp.int32(0),
            step_count=jnp.int32(0),
            key=key,
            control=control,
        )
        extras = self._extras(state, None, 0, jnp.int32(0))
        # The reset observation shows the hand-out; the mask is for the players who play
        # the first action.
        observation = self._observation(state.replace(control=handed_out))._replace(
            action_mask=self._action_mask(state)
        )
        if self.opponent_policy is not None:
            extras["opponent_reward"] = jnp.float32(0.0)
            idle = jnp.zeros((num_agents,), jnp.int32)
            state = TwoSidedState(state, idle, idle.astype(bool), idle.astype(bool))
        timestep = restart(observation, extras=extras, shape=(num_agents,))
        return state, timestep.replace(reward=jnp.zeros(self.reward_spec.shape, jnp.float32))

    def step(self, state: FootballState, action: Array) -> tuple[FootballState, TimeStep]:
        """One step against the scripted AI, or the ``opponent_policy``."""
        if self.opponent_policy is None:
            return self._step(state, action, None)
        key, policy_key = jax.random.split(state.inner.key)
        state = state.replace(inner=state.inner.replace(key=key))
        opponent_action = self.opponent_policy(self.opponent_observation(state), policy_key)
        return self._step(state, action, opponent_action)

    def step_with_opponent(
        self, state: TwoSidedState, action: Array, opponent_action: Array
    ) -> tuple[TwoSidedState, TimeStep]:
        """One step with the right team's actions given (self-play); needs an env built
        with an ``opponent_policy``."""
        if self.opponent_policy is None:
            raise ValueError("step_with_opponent needs an env built with an opponent_policy")
        return self._step(state, action, opponent_action)

    def observation(self, state: FootballState | TwoSidedState) -> Observation:
        """The agents' observation of ``state``."""
        return self._observation(state.inner if isinstance(state, TwoSidedState) else state)

    def opponent_observation(self, state: TwoSidedState) -> Observation:
        """The right team's observation: the game from its end (see the class docstring)."""
        return self._observation(self._mirrored(state))

    def _mirrored(self, state: TwoSidedState) -> FootballState:
        """The play seen from the right team's end: teams swapped, both axes mirrored."""
        inner, order = state.inner, jnp.asarray(self._mirror_order)
        m = inner.match
        # Player indices: the right team's k-th player becomes the k-th.
        renumber = jnp.asarray(np.argsort(self._mirror_order))

        def player(index: Array) -> Array:
            return jnp.where(index >= 0, renumber[jnp.maximum(index, 0)], index)

        ball = m.ball.replace(x=-m.ball.x, y=-m.ball.y, vx=-m.ball.vx, vy=-m.ball.vy)
        match = m.replace(
            x=-m.x[order], y=-m.y[order], vx=-m.vx[order], vy=-m.vy[order],
            heading=sim.wrap(m.heading[order] + jnp.pi), slide=m.slide[order], ball=ball,
            owner=player(m.owner), last_touch=player(m.last_touch),
            last_owner_team=jnp.where(m.last_owner_team >= 0, 1 - m.last_owner_team, -1),
            kick_player=player(m.kick_player), kick_aim_x=-m.kick_aim_x,
            kick_aim_y=-m.kick_aim_y, score=m.score[::-1],
        )  # fmt: skip
        return inner.replace(
            match=match,
            direction=state.opponent_direction,
            sprint=state.opponent_sprint,
            dribble=state.opponent_dribble,
            control=fixed_control(match, self.statics, self.controlled),
        )

    def _commands(
        self,
        commands: sim.Commands,
        match: sim.Match,
        players: Array,
        action: Array,
        sticky: tuple[Array, Array, Array],
        mirrored: bool,
    ) -> tuple[sim.Commands, tuple[Array, Array, Array]]:
        """``commands`` with ``players`` driven by ``action`` (GRF's sticky semantics);
        ``mirrored``: the actions are the right team's, given from its own end."""
        previous_direction, previous_sprint, previous_dribble = sticky
        is_direction = (action >= 1) & (action <= 8)
        direction = jnp.where(is_direction, action, previous_direction)
        direction = jnp.where(action == RELEASE_DIRECTION, 0, direction)
        sprint = (previous_sprint | (action == SPRINT)) & (action != RELEASE_SPRINT)
        dribble = (previous_dribble | (action == DRIBBLE)) & (action != RELEASE_DRIBBLE)
        wanted = jnp.where(
            sprint, sim.TOP_SPEED, jnp.where(dribble, sim.DRIBBLE_SPEED, sim.WALK_SPEED)
        )
        flip = -1.0 if mirrored else 1.0
        aim_x = flip * jnp.asarray(DIRECTION_X)[direction]
        aim_y = flip * jnp.asarray(DIRECTION_Y)[direction]
        kick = jnp.zeros_like(action)
        for agent_action, kind in KICK_OF_ACTION.items():
            kick = jnp.where(action == agent_action, kind, kick)
        players = jnp.asarray(players)
        commands = sim.Commands(
            speed=commands.speed.at[players].set(jnp.where(direction > 0, wanted, 0.0)),
            angle=commands.angle.at[players].set(
                jnp.where(direction > 0, jnp.arctan2(aim_y, aim_x), match.heading[players])
            ),
            kick=commands.kick.at[players].set(kick),
            aim_x=commands.aim_x.at[players].set(aim_x),
            aim_y=commands.aim_y.at[players].set(aim_y),
            slide=commands.slide.at[players].set(action == SLIDING),
            driven=commands.driven.at[players].set(True),
        )
        return commands, (direction, sprint, dribble)

    def _step(
        self, outer: FootballState | TwoSidedState, action: Array, opponent_action: Array | None
    ) -> tuple[FootballState | TwoSidedState, TimeStep]:
        state = outer.inner if isinstance(outer, TwoSidedState) else outer
        action = jnp.asarray(action, jnp.int32)
        mask = self._action_mask(state)
        invalid = count_invalid(mask, action)
        action = play_as_fallback(mask, action, self.fallback_action)
        commands = ai.scripted_commands(state.match, self.statics)
        commands, (direction, sprint, dribble) = self._commands(
            commands, state.match, state.control.controlled, action,
            (state.direction, state.sprint, state.dribble), mirrored=False,
        )  # fmt: skip
        if opponent_action is not None:
            mirrored = self._mirrored(outer)
            opponent_action = jnp.asarray(opponent_action, jnp.int32)
            opponent_action = play_as_fallback(
                self._action_mask(mirrored), opponent_action, self.fallback_action
            )
            commands, opponent_sticky = self._commands(
                commands, state.match, jnp.asarray(self.opponent_controlled), opponent_action,
                (outer.opponent_direction, outer.opponent_sprint, outer.opponent_dribble),
                mirrored=True,
            )  # fmt: skip
        physics_key, key = jax.random.split(state.key)
        match, events = sim.step(state.match, commands, self.statics, physics_key,
                                 self.num_substeps)  # fmt: skip
        control = state.control
        if self.control == "grf":
            control = update_control(control, match, self.statics, events, self.controllable)

        reward = jnp.where(events.goal == 0, 1.0, jnp.where(events.goal == 1, -1.0, 0.0))
        checkpoints = state.checkpoints
        if self.checkpoint_rewards:
            # GRF's wrapper: while the ball is at the feet of a player an agent drives.
            in_possession = jnp.any(control.controlled == match.owner)
            gap = jnp.sqrt((match.ball.x / X_SCALE - 1.0) ** 2 + (match.ball.y / Y_SCALE) ** 2)
            reached = jnp.floor((0.99 - gap) / (0.8 / (NUM_CHECKPOINTS - 1))).astype(jnp.int32) + 1
            reached = jnp.where(in_possession, jnp.clip(reached, 0, NUM_CHECKPOINTS), 0)
            collected = jnp.maximum(checkpoints, reached)
            collected = jnp.where(events.goal == 0, NUM_CHECKPOINTS, collected)
            reward = reward + CHECKPOINT_REWARD * (collected - checkpoints)
            checkpoints = collected
        if self.multi_objective:
            kept = sim.owner_team(match, self.statics) == 0
            reward = jnp.stack([reward, kept.astype(jnp.float32) / self.time_limit])
            if self.weights is not None:
                reward = jnp.dot(jnp.asarray(self.weights), reward)

        scenario = self.scenario
        if scenario.restarts:
            match = sim.restart(match, events, self.statics, self.formations)
            terminated = jnp.bool_(False)
        else:
            terminated = events.goal >= 0
            if scenario.end_on_out_of_play:
                terminated = terminated | events.out
            if scenario.end_on_possession_change:
                terminated = terminated | events.possession_change
        step_count = state.step_count + 1
        truncated = (step_count >= self.time_limit) & ~terminated
        reason = jnp.select(
            [events.goal == 0, events.goal == 1, events.out & terminated,
             events.possession_change & terminated, truncated],
            [1, 2, 3, 4, 5], 0,
        ).astype(jnp.int32)  # fmt: skip
        new_state = FootballState(
            match=match,
            direction=direction,
            sprint=sprint,
            dribble=dribble,
            checkpoints=checkpoints,
            step_count=step_count,
            key=key,
            control=control,
        )
        extras = self._extras(new_state, events, reason, invalid)
        if opponent_action is not None:
            extras["opponent_reward"] = jnp.where(
                events.goal == 1, 1.0, jnp.where(events.goal == 0, -1.0, 0.0)
            )
            new_state = TwoSidedState(new_state, *opponent_sticky)
        timestep = team_timestep(
            reward, self.observation(new_state), terminated, truncated, extras, self.num_agents
        )
        return new_state, timestep

    # --- interface ------------------------------------------------------------------

    def _extras(
        self, state: FootballState, events: sim.Events | None, reason, invalid: Array
    ) -> dict[str, Array]:
        match = state.match
        owner_team = sim.owner_team(match, self.statics)
        return {
            "goals": match.score[0].astype(jnp.float32),
            "goals_conceded": match.score[1].astype(jnp.float32),
            "possession": jnp.select([owner_team == 0, owner_team == 1], [1.0, -1.0], 0.0),
            "scorer": jnp.int32(-1) if events is None else events.scorer,
            "end_reason": jnp.int32(reason),
            "won": (match.score[0] > match.score[1]).astype(jnp.float32),
            "invalid_actions": invalid,
        }

    def _action_mask(self, state: FootballState) -> Array:
        mask = jnp.ones((self.num_agents, NUM_ACTIONS), bool)
        if not self.mask_ball_actions:
            return mask
        match = state.match
        players = state.control.controlled
        has_ball = players == match.owner
        can_slide = ~has_ball & (match.slide[players] == 0)
        for kick_action in KICK_OF_ACTION:
            mask = mask.at[:, kick_action].set(has_ball)
        return mask.at[:, SLIDING].set(can_slide)

    def _team_block(self, match: sim.Match) -> tuple[Array, Array]:
        """Positions and per-step displacements of both teams in GRF units, padded to
        11 players per team with -1 (``[88]`` together), and the ball's 9 numbers."""
        num_left, num_right = self.num_left, self.num_right
        pos = jnp.stack([match.x / X_SCALE, match.y / Y_SCALE], axis=1)
        vel = jnp.stack([match.vx, match.vy], axis=1) * sim.STEP_SECONDS
        vel = vel / jnp.asarray([X_SCALE, Y_SCALE])

        def padded(block):
            left = jnp.full((MAX_TEAM, 2), -1.0).at[:num_left].set(block[:num_left])
            right = jnp.full((MAX_TEAM, 2), -1.0).at[:num_right].set(block[num_left:])
            return left.reshape(-1), right.reshape(-1)

        left_pos, right_pos = padded(pos)
        left_vel, right_vel = padded(vel)
        ball = match.ball
        owner_team = sim.owner_team(match, self.statics)
        ball_block = jnp.stack([
            ball.x / X_SCALE, ball.y / Y_SCALE, ball.z,
            ball.vx * sim.STEP_SECONDS / X_SCALE, ball.vy * sim.STEP_SECONDS / Y_SCALE,
            ball.vz * sim.STEP_SECONDS,
            owner_team == -1, owner_team == 0, owner_team == 1,
        ]).astype(jnp.float32)  # fmt: skip
        return jnp.concatenate([left_pos, left_vel, right_pos, right_vel]), ball_block

    def _observation(self, state: FootballState) -> Observation:
        match = state.match
        teams, ball_block = self._team_block(match)
        game_mode = jax.nn.one_hot(match.game_mode, NUM_GAME_MODES)
        time_left = 1.0 - state.step_count / self.time_limit
        global_state = jnp.concatenate([teams, ball_block, game_mode, time_left[None]])
        if self.representation == "simple115":
            active = jax.nn.one_hot(state.control.controlled, MAX_TEAM)
            shared = jnp.broadcast_to(
                jnp.concatenate([teams, ball_block]), (self.num_agents, teams.shape[0] + 9)
            )
            view = jnp.concatenate(
                [shared, active, jnp.broadcast_to(game_mode, (self.num_agents, NUM_GAME_MODES))],
                axis=1,
            )
        else:
            view = self._egocentric(state, time_left)
        return Observation(
            agents_view=view.astype(jnp.float32),
            action_mask=self._action_mask(state),
            global_state=global_state.astype(jnp.float32),
            step_count=state.step_count,
        )

    def _egocentric(self, state: FootballState, time_left: Array) -> Array:
        match = state.match
        num_players = self.statics.team.shape[0]
        players = state.control.controlled
        scale = jnp.asarray([sim.HALF_LENGTH, sim.HALF_WIDTH])
        me_x, me_y = match.x[players], match.y[players]
        own = jnp.stack([
            me_x / sim.HALF_LENGTH, me_y / sim.HALF_WIDTH, match.vx[players] / sim.TOP_SPEED,
            match.vy[players] / sim.TOP_SPEED, jnp.cos(match.heading[players]),
            jnp.sin(match.heading[players]),
        ], axis=1)  # fmt: skip
        ball = match.ball
        ball_view = jnp.stack([
            (ball.x - me_x) / sim.HALF_LENGTH, (ball.y - me_y) / sim.HALF_WIDTH,
            jnp.broadcast_to(ball.z / sim.GOAL_HEIGHT, me_x.shape),
            jnp.broadcast_to(ball.vx / 30.0, me_x.shape),
            jnp.broadcast_to(ball.vy / 30.0, me_x.shape),
            jnp.broadcast_to(ball.vz / 10.0, me_x.shape),
        ], axis=1)  # fmt: skip
        owner_team = sim.owner_team(match, self.statics)
        mine = players == match.owner
        possession = jnp.stack([
            mine, (owner_team == 0) & ~mine, jnp.broadcast_to(owner_team == 1, mine.shape),
            jnp.broadcast_to(owner_team == -1, mine.shape),
        ], axis=1)  # fmt: skip
        # Every other player in index order (teammates first).
        rank = jnp.arange(num_players - 1)
        others = rank[None, :] + (rank[None, :] >= players[:, None])
        rel = jnp.stack([match.x[others] - me_x[:, None], match.y[others] - me_y[:, None]], -1)
        vel = jnp.stack([match.vx[others], match.vy[others]], -1) / sim.TOP_SPEED
        others_view = jnp.concatenate([rel / scale, vel], -1).reshape(self.num_agents, -1)
        goal = jnp.stack([(sim.HALF_LENGTH - me_x) / sim.HALF_LENGTH, -me_y / sim.HALF_WIDTH], 1)
        sticky = jnp.concatenate([
            jax.nn.one_hot(state.direction - 1, 8), state.sprint[:, None], state.dribble[:, None]
        ], axis=1)  # fmt: skip
        kicking = (match.kick_kind > 0) & (match.kick_player == players)
        return jnp.concatenate([
            own, ball_view, possession, others_view, goal, sticky, kicking[:, None],
            jnp.broadcast_to(time_left, me_x.shape)[:, None],
        ], axis=1)  # fmt: skip

    def render(self, state: FootballState | TwoSidedState) -> np.ndarray:
        """An RGB frame of the pitch seen from above (see :mod:`marl.envs.football.render`)."""
        from marl.envs.football.render import render_frame

        if isinstance(state, TwoSidedState):
            state = state.inner
        return render_frame(self, jax.device_get(state))


def _alike(scenario: Scenario) -> bool:
    """Whether the two teams have the same players in the same roles (then either can
    be played by the same policy)."""
    left, right = scenario.left, scenario.right
    return len(left) == len(right) and [p.role for p in left] == [p.role for p in right]


FOOTBALL_PATTERN = "<scenario>: academy_*, 5_vs_5 or one added with register_scenario"


def football_accepts(task: str) -> bool:
    return task in scenario_names()


def make_football(task: str, **kwargs) -> Football:
    return Football(task, **kwargs)


def make_mo_football(task: str, **kwargs) -> Football:
    """``mo-football/<scenario>``: football with the two-objective reward
    (``multi_objective``: ``attack`` and ``possession``)."""
    return Football(task, **{"multi_objective": True, **kwargs})
