"""The shipped vision pipelines load from the zoo and localize on held-out textures; the Push one runs through the
emulated arm."""
from __future__ import annotations

import numpy as np
import torch

ZOO = "policies/zoo/so101_reach_vision"


def test_zoo_pipeline_localizes_on_held_out_textures():
    from sim2real.evaluation.conditions import heldout_textures_config
    from sim2real.policy_files import load_batch_policy
    from sim2real.vision.dataset import render_dataset

    torch.set_num_threads(2)
    pipeline, config = load_batch_policy(ZOO, None)
    images, goals, _ = render_dataset(heldout_textures_config(config), 24, 900_000)
    proprio = np.zeros(6, np.float32)  # Reach: EE position (m) and velocity (m/s)
    actions = pipeline.act_batch([{"image": image, "proprio": proprio} for image in images])
    error = np.linalg.norm(pipeline.goal_estimates() - goals, axis=1).mean()
    assert error < 0.02, error  # 0.88 cm measured on 300 such renders; chance is 7 cm
    assert actions.shape == (24, 3) and np.all(np.abs(actions) <= 1.0)


PUSH_ZOO = "policies/zoo/so101_push_vision"


def test_zoo_push_pipeline_locates_cube_and_goal_on_held_out_textures():
    from sim2real.evaluation.conditions import heldout_textures_config
    from sim2real.policy_files import load_batch_policy
    from sim2real.vision.dataset import render_dataset
    from sim2real.vision.training import target_errors

    torch.set_num_threads(2)
    pipeline, config = load_batch_policy(PUSH_ZOO, None)
    assert pipeline.perception.meta.targets == ("object", "goal")
    renders = render_dataset(heldout_textures_config(config), 24, 900_000)
    errors = target_errors(pipeline.perception, renders.images, renders.goals)
    assert errors["goal"] < 0.02 and errors["object"] < 0.05, errors  # measured 0.7 / 2.4 cm on 300; chance 5.4 cm
    pipeline.reset_trials(24)
    actions = pipeline.act_batch([{"image": image, "proprio": np.zeros(6, np.float32)} for image in renders.images])
    assert actions.shape == (24, 3) and np.all(np.abs(actions) <= 1.0)


def test_zoo_push_pipeline_runs_through_the_emulated_arm(tmp_path):
    from sim2real.evaluation.emulated import run_emulated
    from sim2real.policy_files import load_batch_policy

    torch.set_num_threads(1)
    pipeline, config = load_batch_policy(PUSH_ZOO, None)
    episodes, facts = run_emulated(pipeline, config, episodes=1, seed=0, workdir=str(tmp_path))
    assert facts["trips"] == [] and facts["camera"] == "rendered 128x64"
    assert np.isfinite(episodes[0].final_distance) and 0.0 < episodes[0].localization_error < 0.03
