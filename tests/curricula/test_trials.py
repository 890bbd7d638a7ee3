"""The RL² trial hook: values fixed per trial, chosen by the teacher, one trial ahead; results reach the teacher."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from policies.trial import TrialWrapper
from policies.vec import SyncTrialVecEnv
from randomizers.curricula import ADRTeacher
from randomizers.curricula.trials import TrialCurriculum, setter_for
from randomizers.params import ParamSpace
from randomizers.wrappers import ActuationRandomizer


def _make() -> gym.Env:
    import sim2real.envs  # noqa: F401

    return TrialWrapper(ActuationRandomizer(gym.make("sim2real/PandaReach-v0", max_episode_steps=3)), 2)


def test_trial_curriculum_pins_values_per_trial() -> None:
    vec = SyncTrialVecEnv([_make, _make])
    try:
        space = ParamSpace.from_dict(vec.envs[0].get_wrapper_attr("get_randomization_space")())
        teacher = ADRTeacher(space, params=["actuation.noise_std"], p_b=1.0, buffer_size=2, metric="return",
                             t_high=-1e9, t_low=-2e9, seed=0)
        hook = TrialCurriculum(teacher, setter_for(vec))
        hook.start(lambda: vec.reset(seed=0), num_envs=vec.num_envs)
        running, checked = np.zeros(2), 0
        for _ in range(30):  # trials of 2 x 3 steps
            for i in range(2):
                if vec.envs[i].episode_index == 0:  # later episodes of a trial: the wrapper's randomize=False rule
                    values = vec.envs[i].get_wrapper_attr("values")
                    assert {k: values[k] for k in hook.current[i]} == dict(hook.current[i])
                    checked += 1
            step = vec.step(torch.zeros(2, *vec.action_space.shape))
            running += step.reward.numpy()
            for i in np.flatnonzero(step.trial_terminated.numpy() + step.trial_truncated.numpy()):
                hook.trial_finished(int(i), float(running[i]))
                running[i] = 0.0
    finally:
        vec.close()
    assert hook.trials == 10 and teacher.episodes == 10 and checked == 30
    assert teacher.ranges()["actuation.noise_std"][1] > 0.0  # widened by the reported trials
    assert hook.metrics()["curriculum/entropy_npd"] == teacher.entropy()
