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


def test_trial_curriculum_writes_the_history_curriculum_plot_reads(tmp_path) -> None:
    from randomizers.curricula.store import HISTORY_FILE, CurriculumHistory, read_history
    from sim2real.cli import main

    vec = SyncTrialVecEnv([_make, _make])
    try:
        space = ParamSpace.from_dict(vec.env_method("get_randomization_space", indices=[0])[0])
        teacher = ADRTeacher(space, params=["actuation.noise_std"], p_b=1.0, buffer_size=2, metric="return",
                             t_high=-1e9, t_low=-2e9, seed=0)
        hook = TrialCurriculum(teacher, setter_for(vec), CurriculumHistory(str(tmp_path)))
        hook.start(lambda: vec.reset(seed=0), num_envs=vec.num_envs)
        running, steps = np.zeros(2), 0
        for _ in range(5):  # "iterations" of 6 steps: 2 trials per env each
            for _ in range(6):
                pinned = vec.env_method("get_wrapper_attr", "values")
                assert [v["actuation.noise_std"] for v in pinned] == [t["actuation.noise_std"] for t in hook.current]
                step = vec.step(torch.zeros(2, *vec.action_space.shape))
                steps += 2
                running += step.reward.numpy()
                for i in np.flatnonzero(step.trial_terminated.numpy()):
                    hook.trial_finished(int(i), float(running[i]))
                    running[i] = 0.0
            hook.end_iteration(steps)
    finally:
        vec.close()
    records = read_history(str(tmp_path / HISTORY_FILE))
    assert records[0]["event"] == "start" and records[0]["teacher"] == "adr"
    widened = [r for r in records if r["event"] == "range" and r["param"] == "actuation.noise_std"]
    assert widened and widened[-1]["high"] == teacher.ranges()["actuation.noise_std"][1] > 0.0
    assert all(r["timesteps"] % 12 == 0 for r in widened)  # stamped with the env steps at the iteration's end
    assert main(["curriculum", "plot", str(tmp_path), "--out", str(tmp_path / "ranges.png")]) == 0
    assert (tmp_path / "ranges.png").stat().st_size > 0


class _RecordingCurriculum(TrialCurriculum):
    """Keeps every trial trace the trainer sends."""

    traces: list = []

    def trial_finished(self, env_index, trial_return, success=None, signals=None, trace=None) -> None:
        self.traces.append(trace)
        super().trial_finished(env_index, trial_return, success, signals, trace)


def _rl2_plr_run(tmp_path, robust: bool, score: str = "positive_value_loss", workers: int = 0):
    from policies.ppo import train_rl2
    from randomizers.curricula import PLRTeacher
    from randomizers.curricula.store import CurriculumHistory

    hooks = []

    def curriculum(vec):
        space = ParamSpace.from_dict(vec.env_method("get_randomization_space", indices=[0])[0])
        teacher = PLRTeacher(space, score=score, capacity=4, min_fill=2, replay_prob=0.5, robust=robust, seed=0)
        hooks.append(_RecordingCurriculum(teacher, setter_for(vec), CurriculumHistory(str(tmp_path))))
        hooks[-1].traces = []
        return hooks[-1]

    config = dict(num_envs=2, rollout_steps=12, seq_len=6, num_minibatches=2, epochs=1, total_steps=96, seed=0,
                  workers=workers, network={"hidden_size": 8, "embed_size": 8, "encoder_sizes": [8]})
    result = train_rl2(config, [_make, _make], tmp_path, tensorboard=False, curriculum=curriculum)
    return hooks[0], result


def test_plr_scores_rl2_trials_by_their_value_loss(tmp_path) -> None:
    from randomizers.curricula import episode_signals

    hook, result = _rl2_plr_run(tmp_path, robust=False, score="l1_value_loss", workers=2)
    teacher = hook.teacher
    assert teacher.episodes == 16 == len(hook.traces)  # 96 steps / 6-step trials (2 episodes of 3 steps)
    assert all(len(t.rewards) == len(t.values) == 6 and t.last_value == 0.0 for t in hook.traces)
    scores = sorted(episode_signals(t.rewards, t.values, 0.0, t.gamma, t.gae_lambda)["l1_value_loss"]
                    for t in hook.traces)
    assert len(teacher.levels) == 4 and all(e["score"] in scores and e["score"] > 0 for e in teacher.levels.values())
    assert result.stats["curriculum/replay_fraction"] > 0
    saved = torch.load(result.checkpoint, weights_only=True)["curriculum"]
    assert saved["teacher"] == "plr" and len(saved["levels"]) == 4


def test_robust_plr_under_rl2_trains_only_on_replayed_levels(tmp_path) -> None:
    import json

    teacher = _rl2_plr_run(tmp_path, robust=True)[0].teacher
    assert teacher.replays > 0 and teacher.levels
    progress = [json.loads(line) for line in open(tmp_path / "progress.jsonl")]
    excluded = [p.get("curriculum/excluded_steps", 0) for p in progress]
    assert excluded[0] == 0  # first rollout: only new levels (nothing to replay yet): kept whole, not an empty update
    assert 0 < max(excluded[1:]) < 24  # later: new levels' steps left out, replayed ones trained on
