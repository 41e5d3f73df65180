"""Test set-up: two fake CPU devices and a persistent compilation cache.

XLA_FLAGS must be set before jax is first imported, which is why this sits here.
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

_CACHE = pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"
jax.config.update("jax_compilation_cache_dir", str(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="session")
def random_return():
    """``random_return(env_name)``: the mean episode return of uniformly random
    available actions over 500 steps of 64 environments."""

    def compute(env_name: str, num_envs: int = 64) -> float:
        import jax.numpy as jnp

        import marl

        vec_env = marl.VectorEnv(marl.make_env(env_name), num_envs)
        state, timestep = vec_env.reset(jax.random.PRNGKey(123))

        def body(carry, key):
            state, timestep, total, count = carry
            logits = jnp.where(timestep.observation.action_mask, 0.0, -jnp.inf)
            state, timestep = vec_env.step(state, jax.random.categorical(key, logits))
            done = timestep.last()
            total = total + jnp.where(done, timestep.extras["episode_return"], 0.0).sum()
            return (state, timestep, total, count + done.sum()), None

        (_, _, total, count), _ = jax.lax.scan(
            body, (state, timestep, 0.0, 0), jax.random.split(jax.random.PRNGKey(7), 500)
        )
        return float(total / count)

    return compute


def _small_config(
    run_dir,
    algo: str = "qmix",
    env: str = "matrix/two_step",
    algo_options: dict | None = None,
    env_kwargs: dict | None = None,
    **changes,
):
    """A :class:`marl.config.TrainConfig` sized for tests (the two-step game's sizes
    by default); ``changes`` set dotted fields, e.g. ``{"arch.num_seeds": 2}``."""
    from marl.config import ArchConfig, EnvConfig, LoggerConfig, TrainConfig
    from marl.registry import algorithm_options

    config = TrainConfig(
        algo=algorithm_options(algo, **(algo_options or {})),
        env=EnvConfig(name=env, add_agent_id=True, kwargs=dict(env_kwargs or {})),
        arch=ArchConfig(
            num_devices=1,
            num_envs=8,
            num_seeds=1,
            total_timesteps=6_000,
            rollout_length=4,
            eval_interval=1_000,
            eval_episodes=4,
            checkpoint_interval=1,
        ),
        logger=LoggerConfig(tensorboard=False, progress_bar=False),
        seed=0,
        run_dir=str(run_dir),
        resume=False,
    )
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = getattr(node, part)
        if not hasattr(node, last):
            raise AttributeError(f"TrainConfig has no {dotted}")
        setattr(node, last, value)
    return config


@pytest.fixture
def train_config(tmp_path):
    """``train_config(algo=..., env=..., algo_options={...}, **{"arch.x": v})``: a small
    TrainConfig writing to ``tmp_path / "run"`` (``run_dir=`` to change it)."""

    def build(*, run_dir=None, **kwargs):
        return _small_config(run_dir or tmp_path / "run", **kwargs)

    return build
