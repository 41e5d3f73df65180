"""The command line: config errors in one line, sweeps, marl-evaluate, the wheel."""

import json
import os
import pathlib
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from marl.config import ConfigError
from marl.experiments.train import preflight

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["foo=1"], "unknown config key 'foo'; valid keys here: algo, arch"),
        (["algo.lr=3"], "unknown config key 'algo.lr'; valid keys here: batch_size"),
        (["arch.num_envs=abc"], "arch.num_envs: Value 'abc'"),
        (["arch.num_envs=-8"], "arch.num_envs: must be a positive integer, got -8"),
        (["arch.total_timesteps=0"], "arch.total_timesteps: must be a positive integer"),
        (["arch.num_devices=2", "arch.num_envs=7"], "arch.num_envs: 7 is not divisible by the 2"),
        (["arch.num_devices=5"], "arch.num_devices: 5 requested but only 2 local devices"),
        (
            ["algo=banana"],
            "algo: unknown option 'banana'; valid: cmat, cw_qmix, ippo, iql, mansa, mappo, mat, "
            "momix, mt_qmix, mt_vdn, ow_qmix, qmix, qmix_outer_loop, qplex, qtran, vdn",
        ),
        (["env=lbf/banana"], "env: unknown option 'lbf/banana'; valid: football/5_vs_5, "),
        (["env.name=nope/x"], "env.name: unknown env 'nope/x'; valid:"),
        (["algo.td_lambda=1.5"], "algo.td_lambda: must lie in [0, 1], got 1.5"),
        (["algo.batch_size=0"], "algo.batch_size: must be at least 1, got 0"),
        (["algo.double_q=3"], "algo.double_q: expected true or false"),
        # A named method cannot be turned into another.
        (["algo.mixer=vdn"], "unknown config key 'algo.mixer'; valid keys here: batch_size"),
        (["algo=vdn", "algo.mixer=qmix"], "unknown config key 'algo.mixer'"),
        (["algo=ow_qmix", "algo.weighting=central"], "unknown config key 'algo.weighting'"),
        (["algo=cw_qmix", "algo.mixer=vdn"], "unknown config key 'algo.mixer'"),
        (["algo.name=vdn"], "algo.name: these are qmix's options and cannot train 'vdn'"),
        (["algo=iql,banana"], "algo: unknown option 'banana'"),
        (
            ["algo=vdn,cw_qmix", "algo.alpha=0.5"],
            "unknown config key 'algo.alpha'; valid keys here:",
        ),
        (["algo=qplex", "algo.attention_heads=0"], "algo.attention_heads: must be at least 1"),
        (["algo=qtran", "algo.mixer=qmix"], "unknown config key 'algo.mixer'; valid keys here:"),
        (["env.kwargs.difficulty=11"], "env.kwargs: difficulty must be one of [1, 2, 3"),
        (
            ["+env.kwargs.colour=red"],
            "env.kwargs.colour: unknown option for smac/3m; valid: difficulty, multi_objective, "
            "own_position, positive_reward, reward_only_positive, reward_sparse, spawn_jitter, "
            "substeps, weapon_delay, weights",
        ),
        # A preference off the simplex, on a multi-objective env, in one line.
        (
            ["env=mo-smac/3m", "env.kwargs.weights=[0.5,0.6]"],
            "env.kwargs: weights must be non-negative and sum to 1 (a point of the simplex "
            "over damage_dealt, health_kept), got [0.5, 0.6]",
        ),
        # The chosen env's own keyword arguments, not SMAC's; settable without '+'.
        (
            ["env=lbf/8x8-2p-2f", "env.kwargs.x=1"],
            "env.kwargs.x: unknown option for lbf/8x8-2p-2f; valid: force_coop, fov, grid_size,",
        ),
        (["env=matrix/one_step", "env.kwargs.payoff=7"], "env.kwargs.payoff: expected a list"),
        # Env options are typed: a quoted 'false' or a 'maybe' is not a bool.
        (["env.kwargs.reward_sparse='false'"], "env.kwargs.reward_sparse: expected true or false"),
        (["env.kwargs.reward_sparse=maybe"], "env.kwargs.reward_sparse: expected true or false"),
        (["env.kwargs.substeps=2.5"], "env.kwargs.substeps: expected an integer, got 2.5"),
        (
            ["algo=mappo", "algo.lr=3"],
            "unknown config key 'algo.lr'; valid keys here: adam_eps, clip_epsilon,",
        ),
        (["algo.max_grad_norm=0"], "algo.max_grad_norm: must be positive, got 0.0"),
        (["algo=mappo", "algo.max_grad_norm=0"], "algo.max_grad_norm: must be positive"),
        (
            ["arch.eval_interval=100000", "arch.total_timesteps=1600"],
            "arch.eval_interval: 100,000 is more than total_timesteps (1,600)",
        ),
        (["arch.total_timesteps=100000000000000000000"], "arch.total_timesteps: 100,000,000,"),
        (["arch.num_envs=1000000000"], "arch.num_envs: 1,000,000,000 envs x 1 seeds is beyond"),
        (["run_dir="], "run_dir: must name a directory, got an empty string"),
        (["run_dir=/proc/marl-run"], "run_dir: cannot create '/proc/marl-run'"),
        (["run_dir=/sys/marl-run"], "run_dir: cannot create '/sys/marl-run'"),
        (["run_dir=/etc/hostname"], "run_dir: '/etc/hostname' is a file, not a directory"),
        (["run_dir=/etc/hostname/run"], "run_dir: cannot create '/etc/hostname/run': '/etc/"),
        (["env=smacv2/zerg_5_vs_5", "env.kwargs.difficulty=0"], "env.kwargs: difficulty must"),
        (["env=smacv2/zerg_3_vs_3"], "env: unknown option 'smacv2/zerg_3_vs_3'; valid:"),
        (["algo=mappo", "algo.td_lambda=0.5"], "unknown config key 'algo.td_lambda'; valid keys"),
        (["algo=mappo", "algo.clip_epsilon=-1"], "algo.clip_epsilon: must not be negative"),
        (["algo=mappo", "algo.gae_lambda=2.0"], "algo.gae_lambda: must lie in [0, 1], got 2.0"),
        (
            ["algo=ippo", "arch.num_devices=2", "algo.num_minibatches=3"],
            "algo.num_minibatches: 3 does not divide the 16 envs of each device and seed",
        ),
        (["algo=mat", "algo.num_heads=3"], "algo.num_heads: 3 does not divide dim=64"),
        (["algo=cmat", "algo.finetune=all"], "algo.finetune: 'all' is unknown; valid: none,"),
        (["env.kwargs.spawn_jitter=-1"], "env.kwargs: spawn_jitter must not be negative"),
        (
            ["env=smacv2/zerg_5_vs_5", "env.kwargs.spawn_jitter=0.5"],
            "env.kwargs.spawn_jitter: unknown option for smacv2/zerg_5_vs_5; valid: difficulty, "
            "reward_only_positive, reward_sparse, substeps, weapon_delay",
        ),
        (["env.kwargs.weapon_delay=maybe"], "env.kwargs.weapon_delay: expected true or false"),
        (["logger.wandb_mode=cloud"], "logger.wandb_mode: must be one of offline, online"),
        (["logger=wandb", "logger.wandb_project= "], "logger.wandb_project: must name a W&B"),
        (["logger=banana"], "logger: unknown option 'banana'; valid: default, quiet, wandb"),
        # MANSA's parts: their own options, settable without '+', checked by their class.
        (["algo=mansa", "algo.budget=0"], "algo.budget: must be a positive integer (CL calls"),
        (["algo=mansa", "algo.il=qmix_outer_loop"], "algo.il: 'qmix_outer_loop' cannot be"),
        (
            ["algo=mansa", "algo.cl=mappo", "algo.cl_options.hiden=8"],
            "algo.cl_options.hiden: unknown option for mappo; valid: adam_eps,",
        ),
        (["algo=mansa", "algo.il_options.hidden_dim=0"], "algo.il_options.hidden_dim: must be"),
        # Several processes: each key named with what it must be.
        (["arch.num_processes=2"], "arch.coordinator: must be process 0's host:port (e.g."),
        (
            ["arch.num_processes=2", "arch.process_id=2", "arch.coordinator=127.0.0.1:1"],
            "arch.process_id: must be in 0..1 for 2 processes, got 2",
        ),
        (["arch.num_processes=-1"], "arch.num_processes: must be 1 (this process alone), more"),
        (["arch.distributed_timeout=0"], "arch.distributed_timeout: must be a positive number"),
    ],
)
def test_bad_configs_fail_with_one_clear_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        preflight(overrides)
    text = str(error.value)
    assert message in text
    assert "\n" not in text
    if overrides == ["algo=vdn", "algo.mixer=qmix"]:  # the valid keys are VDN's own
        assert "mixer_embed_dim" not in text and "hidden_dim" in text


def test_good_sweep_passes_preflight():
    preflight(["algo=iql,vdn,qmix", "seed=0,1,2", "env=matrix/two_step"])
    preflight(["algo=vdn,qmix,qplex,cw_qmix,ow_qmix,qtran", "env=lbf/8x8-2p-2f"])
    preflight(["env=smac/3m,smacv2/terran_10_vs_11", "env.kwargs.difficulty=1,10"])


def _composed(overrides, group="algo"):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from marl.config import register_schema
    from marl.experiments.train import CONFIG_PATH

    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base=None):
        config = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    GlobalHydra.instance().clear()
    return config[group]


def test_family_settings_apply_to_every_env_of_the_family_and_yield_to_the_command_line():
    football = "env=football/academy_3_vs_1_with_keeper"
    for algo in ("qmix", "vdn", "qplex"):
        settings = _composed([football, f"algo={algo}"])
        assert (settings["sequence_length"], settings["updates_per_rollout"]) == (40, 8), algo
    assert _composed(["env=football/5_vs_5", "algo.sequence_length=80"])["sequence_length"] == 80
    for algo in ("ippo", "mappo", "mat", "cmat"):
        assert _composed([football, f"algo={algo}"])["max_grad_norm"] == 0.5, algo
    # Other families keep their own defaults; a pair's settings still apply.
    assert "sequence_length" not in _composed([football, "algo=mappo"])
    assert _composed(["env=smac/3m", "algo=mappo"])["max_grad_norm"] == 10.0
    assert _composed(["env=smac/3m"])["sequence_length"] == 0
    assert _composed(["env=lbf/8x8-2p-2f"])["sequence_length"] == 20


def test_3_vs_1_gives_qmix_epsilon_z_greedy_egocentric_views_on_32_envs_and_no_other_scenario():
    three_vs_one = ["env=football/academy_3_vs_1_with_keeper", "algo=qmix"]
    settings = _composed(three_vs_one)
    assert (settings["epsilon_repeat"], settings["epsilon_finish"]) == (2.0, 0.02)
    assert settings["updates_per_rollout"] == 8  # the family's settings still apply under it
    assert _composed(three_vs_one, group="arch")["num_envs"] == 32
    assert _composed([*three_vs_one, "algo.epsilon_repeat=0"])["epsilon_repeat"] == 0.0
    assert _composed([*three_vs_one, "arch.num_envs=8"], group="arch")["num_envs"] == 8
    assert _composed(three_vs_one, group="env")["kwargs"]["representation"] == "egocentric"
    simple = [*three_vs_one, "env.kwargs.representation=simple115"]
    assert _composed(simple, group="env")["kwargs"]["representation"] == "simple115"
    for algo in ("vdn", "mappo"):
        other_env = _composed(["env=football/academy_3_vs_1_with_keeper", f"algo={algo}"], "env")
        assert other_env["kwargs"]["representation"] == "simple115", algo
    other = ["env=football/academy_run_to_score_with_keeper", "algo=qmix"]
    assert (_composed(other)["epsilon_repeat"], _composed(other)["epsilon_finish"]) == (0.0, 0.05)
    assert _composed(other, group="arch")["num_envs"] == 8
    assert _composed(other, group="env")["kwargs"]["representation"] == "simple115"


def _run(args, cwd, check=True):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(ROOT / ".jax_cache"))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=check)


def test_cli_prints_one_line_and_exits_2(tmp_path):
    result = _run([str(BIN / "marl-train"), "arch.num_envs=0"], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "marl-train: error: arch.num_envs: must be a positive integer, got 0"
    )
    result = _run(
        [str(BIN / "marl-evaluate"), "checkpoint=" + str(tmp_path)], tmp_path, check=False
    )
    assert result.returncode == 2
    assert "not a marl-lab run directory" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.slow
def test_sweep_then_evaluate(tmp_path):
    sweep = [
        str(BIN / "marl-train"),
        "-m",
        "algo=iql,vdn",
        "env=matrix/one_step",
        "arch.total_timesteps=2048",
        "arch.eval_interval=1024",
        "arch.rollout_length=2",
        "arch.eval_episodes=4",
        "logger=quiet",
        "logger.wandb=true",
        "algo.batch_size=16",
        "algo.epsilon_anneal_steps=1000",
        f"run_dir={tmp_path}/runs/${{algo.name}}",
    ]
    result = _run(sweep, tmp_path)
    assert "iql on matrix/one_step" in result.stdout and "vdn on matrix/one_step" in result.stdout
    for algo in ("iql", "vdn"):
        results = json.loads((tmp_path / "runs" / algo / "results.json").read_text())
        assert "absolute_metrics" in results["matrix"]["one_step"][algo]["seed_0"]
        assert (tmp_path / "runs" / algo / "learning_curve.png").stat().st_size > 1000
        # Both jobs of the one sweep process got their own offline W&B run
        # (tests/test_logging.py reads what those files hold).
        (wandb_file,) = (tmp_path / "runs" / algo / "wandb").glob("offline-run-*/run-*.wandb")
        assert wandb_file.stat().st_size > 1000
    result = _run(
        [str(BIN / "marl-evaluate"), f"checkpoint={tmp_path}/runs/vdn", "episodes=5", "json=true"],
        tmp_path,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["algo"] == "vdn" and summary["episodes_per_seed"] == 5
    # Greedy play in a deterministic one-step game gives one payoff of the matrix.
    assert summary["return_mean"] in (8.0, -12.0, 0.0)


@pytest.mark.slow
def test_wheel_contains_every_module_and_trains_when_installed_outside_the_repo(tmp_path):
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("marl_lab-*.whl")
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    licenses = [p for p in unpacked.glob("marl_lab-*.dist-info/**/LICENSE")]
    assert licenses and "Apache License" in licenses[0].read_text()
    sources = {
        "marl": ROOT / "marl",
        "marl/envs": ROOT / "envs",
        "marl/algorithms": ROOT / "algorithms",
        "marl/experiments": ROOT / "experiments",
    }
    modules = []
    for package, source in sources.items():
        for path in source.glob("*.py"):
            assert (unpacked / package / path.name).exists(), f"{package}/{path.name} missing"
            name = package.replace("/", ".") + ("" if path.stem == "__init__" else f".{path.stem}")
            modules.append(name)
    for yaml in (ROOT / "experiments" / "conf").rglob("*.yaml"):
        relative = yaml.relative_to(ROOT / "experiments")
        assert (unpacked / "marl" / "experiments" / relative).exists(), f"{relative} missing"
    script = (
        "import importlib, sys\n"
        f"for name in {sorted(modules)!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(unpacked)!r}), module.__file__\n"
        "print('imported', len(sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(unpacked))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]

    # Installed in a new venv, the wheel trains and evaluates outside the repo. The
    # venv borrows this one's dependencies through a .pth file (a path list, so the
    # editable install's import hook is not loaded): marl itself comes from the wheel.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", str(wheel)], tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = _run([str(venv / "bin" / "python"), str(ROOT / ".ci" / "smoke.py"), "--quick"],
                  outside, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"from {site_packages / 'marl'}" in result.stdout
    assert "marl-train qmix on matrix/one_step and marl-evaluate ran" in result.stdout


def test_new_runs_never_overwrite_and_resume_finds_the_newest(tmp_path, train_config):
    import dataclasses

    from marl.experiments.train import resolve_run_dir

    base = tmp_path / "run"
    config = train_config(run_dir=base)
    resume = dataclasses.replace(config, resume=True)
    assert resolve_run_dir(config) == str(base)
    (base / "checkpoints" / "4").mkdir(parents=True)
    assert resolve_run_dir(config) == f"{base}-1"
    # A run killed while compiling leaves its config and an empty checkpoints/: it
    # is taken (never overwritten) but not what resume=true continues.
    (tmp_path / "run-1" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run-1" / "config.yaml").write_text("{}")
    assert resolve_run_dir(config) == f"{base}-2"
    assert resolve_run_dir(resume) == str(base)
    (tmp_path / "run-1" / "checkpoints" / "0").mkdir()
    assert resolve_run_dir(resume) == f"{base}-1"


def test_readme_library_examples_run_as_written(tmp_path, monkeypatch, capsys):
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Use as a library\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)  # the first writes runs/library-example where it runs
    first: dict = {}
    exec(blocks[0], first)
    assert first["config"].algo.batch_size == 32  # LBF's tuned QMIX, not the generic 128
    assert first["result"]["env_steps"] == 16_000
    assert (tmp_path / "runs" / "library-example" / "results.json").exists()
    second: dict = {}
    exec(blocks[1], second)
    assert second["returns"].shape == (2, 32)
    assert list(second["metrics"].env_steps) == [1_600, 1_600]
    printed = capsys.readouterr().out
    assert "QMIX on LBF: greedy return" in printed and "1,600 env steps per seed" in printed


def test_a_rule_reads_the_same_from_python_and_from_the_command_line(train_config):
    import marl
    from marl.config import TrainConfig
    from marl.train import train

    message = "td_lambda: must lie in [0, 1], got 1.5"
    with pytest.raises(ConfigError, match=f"^algo.{message}$".replace("[", r"\[")):
        preflight(["algo.td_lambda=1.5"])
    with pytest.raises(ConfigError, match=f"^algo.{message}$".replace("[", r"\[")):
        train(train_config(algo_options={"td_lambda": 1.5}))
    spec = marl.env_spec(marl.make_env("matrix/two_step"))
    with pytest.raises(ValueError, match=f"^{message}$".replace("[", r"\[")):
        marl.make_algorithm("qmix", spec, td_lambda=1.5)
    # The minibatch rule, for the envs of one device.
    words = "num_minibatches: 3 does not divide the 8 envs of each device and seed"
    with pytest.raises(ConfigError, match=f"^algo.{words}"):
        train(train_config(algo="mappo", algo_options={"num_minibatches": 3}))
    with pytest.raises(ValueError, match=f"^{words}"):
        marl.make_algorithm("mappo", spec, envs_per_device=8, num_minibatches=3)
    # A run directory's config of an earlier version (QMIX with a mixer option).
    old = train_config().to_dict()
    old["algo"]["mixer"] = "qmix"
    with pytest.raises(ConfigError, match="^algo.mixer: unknown option for qmix; valid: "):
        TrainConfig.from_dict(old)
