"""Our results files read by marl-eval's own pipeline, unchanged.

marl-eval (``id-marl-eval`` on PyPI) pins versions that do not install on Python
3.11, so CI installs it with ``--no-deps`` (``.ci/run``), the test extra bringing
what it imports. Elsewhere the test is skipped unless ``MARL_LAB_REQUIRE_MARL_EVAL``
is set, as CI sets it, where a missing marl-eval is a failure.
"""

import os

import pytest

from marl.train import train

if os.environ.get("MARL_LAB_REQUIRE_MARL_EVAL"):
    import marl_eval  # noqa: F401
else:
    pytest.importorskip(
        "marl_eval", reason="pip install --no-deps id-marl-eval==0.0.4 (as .ci/run does)"
    )

SIZES = {"arch.total_timesteps": 2_048, "arch.eval_interval": 1_024}


def test_a_runs_tree_goes_through_marl_evals_pipeline(tmp_path, train_config, monkeypatch):
    import numpy as np
    from marl_eval.json_tools import concatenate_json_files
    from marl_eval.plotting_tools.plotting import aggregate_scores
    from marl_eval.utils.data_processing_utils import (
        create_matrices_for_rliable,
        data_process_pipeline,
    )

    runs = tmp_path / "runs"
    algo = {"batch_size": 16, "buffer_size": 512}
    # marl-eval compares algorithms over the same seeds: QMIX's two in one run, IQL's
    # in one run each (the files name the real seed, so the tree concatenates).
    train(train_config(run_dir=runs / "qmix", algo_options=algo, **{**SIZES, "arch.num_seeds": 2}))
    for seed in (0, 1):
        train(train_config(run_dir=runs / f"iql-{seed}", algo="iql", algo_options=algo,
                           seed=seed, **SIZES))  # fmt: skip

    monkeypatch.chdir(tmp_path)
    data = concatenate_json_files(str(runs), str(tmp_path / "concatenated") + "/")
    assert sorted(data["matrix"]["two_step"]) == ["iql", "qmix"]
    for name in ("iql", "qmix"):
        assert sorted(data["matrix"]["two_step"][name]) == ["seed_0", "seed_1"], name

    processed = data_process_pipeline(raw_data=data, metrics_to_normalize=["return"])
    comparison, sample_efficiency = create_matrices_for_rliable(
        data_dictionary=processed, environment_name="matrix", metrics_to_normalize=["return"]
    )
    # Runs (seeds) x tasks per algorithm, and one sample-efficiency point per evaluation.
    assert comparison["mean_norm_return"]["qmix"].shape == (2, 1)
    assert comparison["mean_norm_return"]["iql"].shape == (2, 1)
    assert sample_efficiency["mean_norm_return"]["qmix"].shape[-1] == 2
    assert np.all(np.isfinite(comparison["mean_win_rate"]["qmix"]))

    # marl-eval fixes rliable's bootstrap at 50,000 resamples (about a minute here); the
    # code path is the same with fewer.
    import marl_eval.plotting_tools.plotting as marl_eval_plotting

    interval_estimates = marl_eval_plotting.rly.get_interval_estimates
    with monkeypatch.context() as patch:
        patch.setattr(
            marl_eval_plotting.rly,
            "get_interval_estimates",
            lambda *args, reps, **kwargs: interval_estimates(*args, reps=min(reps, 500), **kwargs),
        )
        _, scores, cis = aggregate_scores(
            dictionary=comparison, metric_name="return", metrics_to_normalize=["return"],
            save_tabular_as_latex=False,
        )  # fmt: skip
    # rliable's aggregates (IQM, mean, ...) per algorithm, named as marl-eval prints them.
    assert {name.lower() for name in scores} == {"qmix", "iql"}

    # marl-report reads the same tree: both algorithms, 2 seeds each, one task.
    from marl.experiments.report import build_report

    report = build_report([runs], tmp_path / "report", reps=200)
    matrix = report["environments"]["matrix"]
    assert matrix["runs"] == {"iql": 2, "qmix": 2} and matrix["metric"] == "mean_win_rate"
    assert set(matrix["probability_of_improvement"]) == {"iql,qmix", "qmix,iql"}
    assert (tmp_path / "report" / "report.md").read_text().count("| two_step |") == 2


def test_multi_objective_runs_go_through_marl_evals_pipeline_by_hypervolume(
    tmp_path, train_config, monkeypatch
):
    import numpy as np
    from marl_eval.json_tools import concatenate_json_files
    from marl_eval.utils.data_processing_utils import (
        create_matrices_for_rliable,
        data_process_pipeline,
    )

    pytest.importorskip("pymoo")
    runs = tmp_path / "runs"
    algo = {"batch_size": 16, "buffer_size": 512, "hidden_dim": 16}
    for name, options in (
        ("momix", {**algo, "eval_preference_divisions": 4}),
        ("qmix_outer_loop", algo),
    ):
        config = train_config(
            run_dir=runs / name, algo=name, env="mo-matrix/pareto_sum", algo_options=options,
            **{**SIZES, "arch.num_seeds": 2, "arch.num_envs": 10},
        )  # fmt: skip
        train(config)

    monkeypatch.chdir(tmp_path)
    data = concatenate_json_files(str(runs), str(tmp_path / "concatenated") + "/")
    assert sorted(data["mo-matrix"]["pareto_sum"]) == ["momix", "qmix_outer_loop"]
    processed = data_process_pipeline(raw_data=data, metrics_to_normalize=["return"])
    comparison, sample_efficiency = create_matrices_for_rliable(
        data_dictionary=processed, environment_name="mo-matrix", metrics_to_normalize=["return"]
    )
    # The front's hypervolume is a metric like the return: per seed and evaluation.
    for name in ("momix", "qmix_outer_loop"):
        hypervolume = comparison["mean_hypervolume"][name]
        assert hypervolume.shape == (2, 1) and np.all(hypervolume > 0)
        # 10 envs x 4-step rollouts: 3 chunks of 1,000 steps reach 2,048.
        assert sample_efficiency["mean_hypervolume"][name].shape[-1] == 3


def test_a_task_set_run_is_one_algorithm_over_several_marl_eval_tasks(
    tmp_path, train_config, monkeypatch
):
    import numpy as np
    from marl_eval.json_tools import concatenate_json_files
    from marl_eval.utils.data_processing_utils import (
        create_matrices_for_rliable,
        data_process_pipeline,
    )

    from marl.config import EnvConfig, TaskConfig

    runs = tmp_path / "runs"
    config = train_config(
        run_dir=runs / "mt_vdn",
        algo="mt_vdn",
        algo_options={"hidden_dim": 16, "batch_size": 8, "buffer_size": 400},
        **{**SIZES, "arch.num_seeds": 2},
    )
    config.env = EnvConfig(
        name="multitask/matrix",
        tasks=[TaskConfig("matrix/one_step"), TaskConfig("matrix/two_step")],
    )
    train(config)
    monkeypatch.chdir(tmp_path)
    data = concatenate_json_files(str(runs), str(tmp_path / "concatenated") + "/")
    assert sorted(data["matrix"]) == ["one_step", "two_step"]
    processed = data_process_pipeline(raw_data=data, metrics_to_normalize=["return"])
    comparison, _ = create_matrices_for_rliable(
        data_dictionary=processed, environment_name="matrix", metrics_to_normalize=["return"]
    )
    # Seeds x tasks: marl-eval aggregates the set's tasks as it would separate runs.
    assert comparison["mean_norm_return"]["mt_vdn"].shape == (2, 2)
    assert np.all(np.isfinite(comparison["mean_win_rate"]["mt_vdn"]))
