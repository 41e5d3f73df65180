"""Plugins: an installed package's algorithm, env and configs work from marl-train.

The package is docs/plugins.md's worked example (examples/plugin), installed into
a directory of its own with pip so that its entry points are found the way an
installed package's are.
"""

import importlib.metadata
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from marl import plugins, registry

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent
SMALL = [
    "arch.total_timesteps=1024",
    "arch.eval_interval=512",
    "arch.eval_episodes=4",
    "logger=quiet",
]


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    target = tmp_path_factory.mktemp("plugin_site")
    # Built from a copy: pip leaves build/ and *.egg-info beside the sources.
    source = tmp_path_factory.mktemp("plugin_source") / "plugin"
    shutil.copytree(
        ROOT / "examples" / "plugin",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    return target


def _run(args, cwd, pythonpath=None):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(ROOT / ".jax_cache"))
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)


def test_a_plugin_trains_and_evaluates_from_the_command_line(plugin_path, tmp_path):
    result = _run(
        [str(BIN / "marl-train"), "algo=vdn_s", "env=coordination/climbing", *SMALL],
        tmp_path,
        plugin_path,
    )
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "coordination" / "climbing" / "vdn_s" / "seed0"
    results = json.loads((run_dir / "results.json").read_text())
    assert "seed_0" in results["coordination"]["climbing"]["vdn_s"]
    # The plugin's tuned settings (conf/tuned/coordination/climbing/vdn_s.yaml) applied
    # from its config package on Hydra's search path; the command line won over its budget.
    config = (run_dir / "config.yaml").read_text()
    assert "sequence_length: 2" in config and "total_timesteps: 1024" in config
    assert "penalty: -30.0" in config
    result = _run(
        [str(BIN / "marl-evaluate"), f"checkpoint={run_dir}", "episodes=4", "json=true"],
        tmp_path,
        plugin_path,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    # Greedy play of a one-step game is one entry of the climbing game's payoff.
    assert summary["algo"] == "vdn_s" and summary["return_mean"] in (11, -30, 0, 7, 6, 5)


def test_a_plugins_names_and_options_appear_in_the_errors(plugin_path, tmp_path):
    cases = [
        (["algo=nope"], "algo: unknown option 'nope'; valid: cmat, cw_qmix"),
        (["algo=nope"], ", vdn, vdn_s\n"),
        (
            ["algo=vdn_s", "env=coordination/climbing", "env.kwargs.x=1"],
            "env.kwargs.x: unknown option for coordination/climbing; valid: penalty\n",
        ),
        (
            ["algo=vdn_s", "env=coordination/climbing", "env.kwargs.penalty=5"],
            "env.kwargs: penalty must be negative, got 5\n",
        ),
        (["algo=vdn_s", "algo.state_bias_dim=0"], "algo.state_bias_dim: must be at least 1"),
    ]
    for words, message in cases:
        result = _run([str(BIN / "marl-train"), *words], tmp_path, plugin_path)
        assert result.returncode == 2 and message in result.stderr, (words, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
    # Without the plugin installed, its names are not offered.
    result = _run([str(BIN / "marl-train"), "algo=vdn_s"], tmp_path)
    assert result.returncode == 2 and "valid: cmat" in result.stderr
    assert "vdn_s" not in result.stderr.split("valid:")[1]


def test_names_registered_from_python_work_in_marl_train_without_a_yaml(tmp_path):
    script = tmp_path / "my_train.py"
    script.write_text(
        textwrap.dedent(
            """
            import dataclasses
            from marl.algorithms.value_decomposition import VDNOptions, make_vdn
            from marl.envs.matrix import OneStepMatrixGame
            from marl.registry import register_algorithm, register_env
            from marl.experiments.train import main

            @dataclasses.dataclass
            class MyVDNOptions(VDNOptions):
                name: str = "my_vdn"

            register_algorithm("my_vdn", make_vdn, MyVDNOptions)
            register_env("mine/one_step", OneStepMatrixGame)
            main()
            """
        )
    )
    words = ["algo=my_vdn", "env=mine/one_step", "algo.batch_size=16", "arch.rollout_length=2"]
    result = _run([sys.executable, str(script), *words, *SMALL], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "my_vdn on mine/one_step: after 1,024 env steps" in result.stdout
    result = _run([sys.executable, str(script), *words, "env.kwargs.payoff=3"], tmp_path)
    assert result.returncode == 2
    assert result.stderr == "marl-train: error: env.kwargs.payoff: expected a list, got 3\n"


def _fake_plugin(monkeypatch, tmp_path, source, group=plugins.ALGORITHM_GROUP):
    (tmp_path / "fake_plugin.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    point = importlib.metadata.EntryPoint("fake", "fake_plugin", group)
    monkeypatch.setattr(plugins, "_entry_points", lambda g: [point] if g == group else [])
    monkeypatch.setattr(plugins, "_loaded", set())
    monkeypatch.delitem(sys.modules, "fake_plugin", raising=False)


def test_a_plugin_that_fails_to_import_is_named(monkeypatch, tmp_path):
    _fake_plugin(monkeypatch, tmp_path, "import not_a_module_anywhere\n")
    with pytest.raises(plugins.PluginError) as error:
        registry.algorithm_names()
    assert str(error.value) == (
        "plugin 'fake' (marl_lab.algorithms = fake_plugin) failed to load: "
        "ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    )


def test_a_plugin_cannot_take_a_name_already_registered(monkeypatch, tmp_path):
    source = """
        from marl.algorithms.value_decomposition import VDNOptions, make_vdn
        from marl.registry import register_algorithm
        register_algorithm("vdn", make_vdn, VDNOptions)  # the same: accepted
        import dataclasses
        @dataclasses.dataclass
        class Options(VDNOptions):
            name: str = "qmix"
        register_algorithm("qmix", make_vdn, Options)  # another learner as qmix: refused
    """
    _fake_plugin(monkeypatch, tmp_path, source)
    with pytest.raises(plugins.PluginError, match="algorithm 'qmix' is already registered"):
        registry.algorithm_names()
    assert registry.algorithm_options_class("qmix").__module__.endswith("mixing")


def test_a_plugin_env_cannot_hide_a_family_task(monkeypatch, tmp_path):
    source = """
        from marl.envs.matrix import OneStepMatrixGame
        from marl.registry import register_env
        register_env("lbf/8x8-2p-2f", OneStepMatrixGame)
    """
    _fake_plugin(monkeypatch, tmp_path, source, plugins.ENV_GROUP)
    with pytest.raises(plugins.PluginError, match="already a task of the 'lbf' family"):
        registry.env_names()
