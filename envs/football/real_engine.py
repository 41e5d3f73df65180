"""Google Research Football's own engine, spoken to in the same numbers as ``football/<scenario>``.

Both engines take GRF's 19 default actions and give GRF's ``simple115`` vector
(``simple115v2``: missing players padded with -1), so a policy trained on the JAX
simulator plays here unchanged: this is what the fidelity benchmark
(``benchmarks/football_fidelity.py``) and ``marl-evaluate ... engine=gfootball`` use.

:class:`RealFootball` wraps ``gfootball.env.create_environment`` (raw observations,
``scoring`` rewards, as many left players under agent control as the JAX scenario
has agents) and adds what the JAX environment has and GRF does not:

* the **action mask** of ``football/<scenario>`` (kicks only for the agent on the
  ball, sliding only off it), applied as the JAX env applies it: a masked action is
  played as idle. GRF's raw observation does not say whether a player is already
  sliding, so sliding is offered to every agent without the ball;
* the **end reason** of every episode, in :data:`marl.envs.football.env.END_REASONS`,
  read off the observation with GRF's own rules (``football_env_core.py``): a goal,
  the game mode leaving "normal" (out of play), the team on the ball changing from
  one team to the other (possession change), or the step limit;
* a :class:`Snapshot` of the positions in metres, the ball, its owner and which
  player each agent drives now, in the JAX simulator's numbering (left team first).

Scenarios GRF does not ship (registered with
:func:`marl.envs.football.scenarios.register_scenario`) are handed to GRF's scenario
builder from their :class:`~marl.envs.football.scenarios.Scenario` (same positions,
roles, lazy players, end rules and difficulties: :func:`install_grf_scenario`), so a
hand-made situation plays in both engines.

Each episode gets its own engine seed, drawn reproducibly from ``seed``, and its own
**team processing order**. GRF processes the two teams in an order
(``reverse_team_processing``) it fixes once per environment, from the parity of the
first episode's random seed, and the order changes how play goes: with the other
order, a lone keeper facing shots from 30 m held 49% of 200 tries instead of 10%
(``benchmarks/football_fidelity.py --grf-team-order``, 2026-12-07). A run on one
environment therefore sees one order only, a coin flip; GRF's own episodes, over
environments, see both equally.
:func:`episode_settings` draws both per episode, the order from the seed's parity as
GRF does, so that any number of episodes on one environment samples both orders
(``team_order="normal"`` or ``"reversed"`` fixes one).

GRF hands the agents' control around its controllable players (the receiver of a
pass, a free teammate much nearer the ball), keeper included; ``football/<scenario>``
does too by default (:mod:`marl.envs.football.control`; ``control="fixed"`` keeps the
scenario's players). The :class:`Snapshot` reports GRF's assignment every step.

The engine is a benchmark dependency (``bash benchmarks/gfootball_setup.sh``), never
needed to train or test marl-lab.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from marl.envs.football.scenarios import X_SCALE, Y_SCALE, Scenario, get_scenario

GFOOTBALL_VERSION = "2.10.2"
SETUP_HINT = (
    f"the real GRF engine needs gfootball {GFOOTBALL_VERSION}, built against Debian's "
    "python3: run `bash benchmarks/gfootball_setup.sh` and use the python of the venv it makes"
)
NUM_ACTIONS = 19
IDLE, SLIDING = 0, 16
KICKS = (9, 10, 11, 12)  # long, high and short pass, shot
NORMAL_MODE = 0


def gfootball_available() -> bool:
    """Whether ``gfootball`` can be imported here."""
    return importlib.util.find_spec("gfootball") is not None


def require_gfootball() -> None:
    """Raises a one-line error naming the setup script when ``gfootball`` is missing."""
    if not gfootball_available():
        raise ModuleNotFoundError(SETUP_HINT)


def grf_builder(scenario: Scenario) -> Callable[[Any], None]:
    """GRF's ``build_scenario(builder)`` for ``scenario``, built as GRF's own files are:
    the ball and the players at the scenario's coordinates (GRF's builder units, the
    right team in its own frame), its roles and lazy players, its step limit, end rules
    and difficulties, offsides off. Scenarios with restarts (full games) need kick-off
    formations that GRF's builder takes per episode: only GRF's own such files play."""
    if scenario.restarts:
        raise ValueError(
            f"scenario '{scenario.name}': GRF's engine plays registered scenarios without "
            "restarts only (full games need GRF's own scenario files)"
        )

    def build_scenario(builder: Any) -> None:
        import gfootball_engine as engine

        config = builder.config()
        config.game_duration = scenario.time_limit
        config.deterministic = False
        config.offsides = False
        config.end_episode_on_score = True
        config.end_episode_on_out_of_play = scenario.end_on_out_of_play
        config.end_episode_on_possession_change = scenario.end_on_possession_change
        config.left_team_difficulty = scenario.left_difficulty
        config.right_team_difficulty = scenario.right_difficulty
        builder.SetBallPosition(*scenario.ball)
        for team, players in ((engine.e_Team.e_Left, scenario.left),
                              (engine.e_Team.e_Right, scenario.right)):  # fmt: skip
            builder.SetTeam(team)
            for index, player in enumerate(players):
                role = getattr(engine.e_PlayerRole, f"e_PlayerRole_{player.role}")
                controllable = players is not scenario.left or index in scenario.selectable
                builder.AddPlayer(player.x, player.y, role, player.lazy, controllable)

    return build_scenario


def install_grf_scenario(scenario: Scenario) -> str:
    """Makes ``scenario`` loadable by GRF under its name and returns that name: GRF
    loads ``gfootball.scenarios.<name>`` and calls its ``build_scenario``; a scenario
    GRF ships is left alone, any other gets a module of :func:`grf_builder` (in this
    process)."""
    if not scenario.name.isidentifier():
        raise ValueError(
            f"scenario '{scenario.name}': GRF loads a scenario as a Python module, so its "
            "name must be a valid identifier (letters, digits and underscores)"
        )
    require_gfootball()
    module_name = f"gfootball.scenarios.{scenario.name}"
    if module_name in sys.modules or importlib.util.find_spec(module_name) is not None:
        return scenario.name
    module = types.ModuleType(module_name)
    module.build_scenario = grf_builder(scenario)  # type: ignore[attr-defined]
    sys.modules[module_name] = module
    return scenario.name


class Snapshot(NamedTuple):
    """Where everything is, in metres, players numbered left team first."""

    x: np.ndarray  # [P]
    y: np.ndarray
    team: np.ndarray  # [P] 0 left, 1 right
    keeper: np.ndarray  # [P] bool
    ball_x: float
    ball_y: float
    ball_z: float
    owner: int  # player on the ball, -1 loose
    controlled: np.ndarray  # [A] the player each agent drives this step
    game_mode: int
    score: tuple[int, int]
    held_direction: np.ndarray  # [A] each agent's sticky direction, 1..8 (0: none)


TEAM_ORDERS = ("both", "normal", "reversed")


def episode_settings(rng: np.random.Generator, team_order: str = "both") -> dict[str, Any]:
    """The engine settings of one episode: a seed from ``rng`` and the team processing
    order, by default the one GRF derives from the seed (its parity) when it makes a new
    environment; ``normal`` or ``reversed`` fix it (to measure each order alone)."""
    if team_order not in TEAM_ORDERS:
        raise ValueError(f"team_order={team_order!r}: choose one of {', '.join(TEAM_ORDERS)}")
    engine_seed = int(rng.integers(2**31 - 1))
    reverse = bool(engine_seed % 2) if team_order == "both" else team_order == "reversed"
    return {"game_engine_random_seed": engine_seed, "reverse_team_processing": reverse}


def held_direction(raw: dict[str, Any]) -> int:
    """An agent's sticky direction action (1..8, GRF's order; 0 none) from its raw
    observation's ``sticky_actions`` (8 directions, then sprint and dribble)."""
    directions = np.asarray(raw.get("sticky_actions", np.zeros(10)))[:8]
    return int(np.argmax(directions)) + 1 if directions.any() else 0


def snapshot_of(
    raw: dict[str, Any], controlled: np.ndarray, directions: np.ndarray | None = None
) -> Snapshot:
    """The :class:`Snapshot` of one raw GRF observation (any agent's: they share all but
    ``active`` and ``sticky_actions``); ``controlled`` is every agent's ``active`` player
    and ``directions`` every agent's :func:`held_direction`."""
    left, right = np.asarray(raw["left_team"]), np.asarray(raw["right_team"])
    num_left = left.shape[0]
    positions = np.concatenate([left, right])
    roles = np.concatenate([raw["left_team_roles"], raw["right_team_roles"]])
    owner = -1
    if raw["ball_owned_team"] == 0:
        owner = int(raw["ball_owned_player"])
    elif raw["ball_owned_team"] == 1:
        owner = num_left + int(raw["ball_owned_player"])
    ball = np.asarray(raw["ball"], np.float64)
    return Snapshot(
        x=positions[:, 0] * X_SCALE,
        y=positions[:, 1] * Y_SCALE,
        team=np.array([0] * num_left + [1] * right.shape[0], np.int32),
        keeper=roles == 0,  # e_PlayerRole_GK
        ball_x=float(ball[0] * X_SCALE),
        ball_y=float(ball[1] * Y_SCALE),
        ball_z=float(ball[2]),
        owner=owner,
        controlled=np.asarray(controlled, np.int32),
        game_mode=int(raw["game_mode"]),
        score=(int(raw["score"][0]), int(raw["score"][1])),
        held_direction=np.zeros(len(controlled), np.int32)
        if directions is None
        else np.asarray(directions, np.int32),
    )


class RealFootball:
    """One GRF academy scenario in the real engine, with the JAX env's mask and end reasons.

    ``reset()`` and ``step(actions)`` return ``(observation [A, 115], action_mask [A, 19],
    snapshot)``; ``step`` also returns the team reward, whether the episode ended and
    its end reason (``"running"`` until it ends).
    """

    def __init__(
        self,
        scenario: str,
        num_agents: int | None = None,
        seed: int = 0,
        mask_ball_actions: bool = True,
        team_order: str = "both",
    ) -> None:
        episode_settings(np.random.default_rng(0), team_order)  # a bad order fails here
        require_gfootball()
        import gfootball.env as football_env
        from gfootball.env.wrappers import Simple115StateWrapper

        spec = get_scenario(scenario)
        self.scenario = scenario
        self.num_agents = num_agents or len(spec.controlled)
        self.time_limit = spec.time_limit
        # The same in GRF's scenario files: only academy_corner plays on after a change.
        self.end_on_possession_change = spec.end_on_possession_change
        self.mask_ball_actions = mask_ball_actions
        self.team_order = team_order
        self._to_simple115 = Simple115StateWrapper.convert_observation
        self._env = football_env.create_environment(
            env_name=install_grf_scenario(spec),
            representation="raw",
            rewards="scoring",
            number_of_left_players_agent_controls=self.num_agents,
            render=False,
        )
        # GRF keeps one engine seed for every episode when it is given one: draw a new
        # one per episode, reproducibly from ``seed``.
        self._seeds = np.random.default_rng(seed)
        self._raw: list[dict[str, Any]] = []
        self._owned_team = -1
        self.steps = 0

    def close(self) -> None:
        self._env.close()

    def _views(self) -> tuple[np.ndarray, np.ndarray, Snapshot]:
        raw = self._raw
        controlled = np.array([int(r["active"]) for r in raw], np.int32)
        directions = np.array([held_direction(r) for r in raw], np.int32)
        snapshot = snapshot_of(raw[0], controlled, directions)
        observation = np.asarray(self._to_simple115(raw, True), np.float32)
        if self.mask_ball_actions:
            mask = action_mask(snapshot)
        else:
            mask = np.ones((self.num_agents, NUM_ACTIONS), bool)
        return observation, mask, snapshot

    def reset(self) -> tuple[np.ndarray, np.ndarray, Snapshot]:
        config = self._env.unwrapped._config
        for name, value in episode_settings(self._seeds, self.team_order).items():
            config[name] = value
        self._raw = list(self._env.reset())
        self._owned_team = int(self._raw[0]["ball_owned_team"])
        self.steps = 0
        return self._views()

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, Snapshot, float, bool, str]:
        """Plays one step; masked actions are played as idle, as the JAX env does."""
        _, mask, _ = self._views()
        actions = np.asarray(actions, np.int64).reshape(self.num_agents)
        if ((actions < 0) | (actions >= NUM_ACTIONS)).any():
            raise ValueError(f"actions must lie in 0..{NUM_ACTIONS - 1}, got {actions.tolist()}")
        played = np.where(mask[np.arange(self.num_agents), actions], actions, IDLE)
        before_team = self._owned_team
        raw, reward, done, _ = self._env.step(played.tolist())
        self._raw = list(raw)
        self.steps += 1
        now = self._raw[0]
        if now["ball_owned_team"] != -1:
            self._owned_team = int(now["ball_owned_team"])
        reason = "running"
        if done:
            reason = end_reason(
                now, before_team, self.steps, self.time_limit, self.end_on_possession_change
            )
        observation, mask, snapshot = self._views()
        # GRF gives every agent the team's reward.
        team_reward = float(np.asarray(reward, np.float64).reshape(-1)[0])
        return observation, mask, snapshot, team_reward, bool(done), reason


def action_mask(snapshot: Snapshot) -> np.ndarray:
    """``football/<scenario>``'s mask ``[A, 19]``: kicks for the agent on the ball, sliding
    for the others (GRF does not show who is already sliding), the rest always."""
    controlled = snapshot.controlled
    has_ball = (snapshot.owner >= 0) & (controlled == snapshot.owner)
    mask = np.ones((controlled.shape[0], NUM_ACTIONS), bool)
    mask[:, list(KICKS)] = has_ball[:, None]
    mask[:, SLIDING] = ~has_ball
    return mask


def end_reason(
    raw: dict[str, Any],
    owned_team_before: int,
    steps: int,
    time_limit: int,
    end_on_possession_change: bool = True,
) -> str:
    """Why GRF ended an episode, by its own rules, named in the JAX env's order of
    precedence (a goal, then out of play, then a change of possession, then time)."""
    if raw["score"][0] > 0:
        return "scored"
    if raw["score"][1] > 0:
        return "conceded"
    if int(raw["game_mode"]) != NORMAL_MODE:
        return "out_of_play"
    owned = int(raw["ball_owned_team"])
    if (
        end_on_possession_change
        and owned != -1
        and owned_team_before != -1
        and owned != owned_team_before
    ):
        return "possession_change"
    if steps >= time_limit:
        return "time_limit"
    return "running"
