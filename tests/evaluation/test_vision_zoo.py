"""The shipped vision pipeline loads from the zoo and localizes the goal on held-out textures."""
from __future__ import annotations

import numpy as np
import torch

ZOO = "policies/zoo/so101_reach_vision"


def test_zoo_pipeline_localizes_on_held_out_textures():
    from sim2real.evaluation.conditions import heldout_textures_config
    from sim2real.evaluation.policy import load_eval_policy
    from sim2real.vision.dataset import render_dataset

    torch.set_num_threads(2)
    pipeline, config = load_eval_policy(ZOO, None)
    images, goals, _ = render_dataset(heldout_textures_config(config), 24, 900_000)
    proprio = np.zeros(6, np.float32)  # Reach: EE position (m) and velocity (m/s)
    actions = pipeline.act_batch([{"image": image, "proprio": proprio} for image in images])
    error = np.linalg.norm(pipeline.goal_estimates() - goals, axis=1).mean()
    assert error < 0.02, error  # 0.88 cm measured on 300 such renders; chance is 7 cm
    assert actions.shape == (24, 3) and np.all(np.abs(actions) <= 1.0)
