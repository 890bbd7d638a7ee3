"""The SB3 callback: a curriculum drives randomization inside a real SubprocVecEnv (values seen in
``info["randomization"]`` of each new episode), checkpoints restore the teacher, excluded episodes are not trained on."""
from __future__ import annotations

import json
import os

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from randomizers.curricula import build_teacher
from randomizers.curricula.sb3 import CurriculumCallback, _filtered_get
from randomizers.curricula.store import HISTORY_FILE, STATE_FILE, read_history
from randomizers.params import ParamSpace
from randomizers.wrappers import ActuationRandomizer, DynamicsRandomizer

STEPS = 6


def make_env() -> gym.Env:
    import sim2real.envs  # noqa: F401  (registers the envs in worker processes)

    env = gym.make("sim2real/PandaReach-v0", max_episode_steps=STEPS)
    env = ActuationRandomizer(DynamicsRandomizer(env))
    return Monitor(env, info_keywords=("is_success",))


def env_space() -> ParamSpace:
    env = make_env()
    try:
        return ParamSpace.from_dict(env.get_wrapper_attr("get_randomization_space")())
    finally:
        env.close()


class Observing(CurriculumCallback):
    """Checks, at every episode end, that the env's new episode runs with the values the teacher chose."""

    checked = 0

    def _on_step(self) -> bool:
        ok = super()._on_step()
        for i in np.flatnonzero(self.locals["dones"]):
            seen = self.training_env.reset_infos[i]["randomization"]
            for name, value in self.current[i].items():
                assert seen[name] == value, (name, seen[name], value)
            self.checked += 1
        return ok


def test_adr_drives_randomization_in_subproc_vec_env(tmp_path) -> None:
    space = env_space()
    teacher = build_teacher({"name": "adr", "params": ["dynamics.actuator.strength", "actuation.noise_std"],
                             "p_b": 1.0, "buffer_size": 2, "t_high": -1e9, "t_low": -2e9, "metric": "return"},
                            space, n_envs=2, seed=0)
    env = SubprocVecEnv([make_env, make_env])
    try:
        callback = Observing(teacher, run_dir=str(tmp_path))
        model = PPO("MultiInputPolicy", env, n_steps=24, batch_size=24, n_epochs=1, seed=0, device="cpu")
        model.learn(96, callback=callback)
    finally:
        env.close()
    assert callback.checked >= 96 // STEPS - 2
    assert teacher.episodes >= 96 // STEPS - 2
    history = read_history(str(tmp_path / HISTORY_FILE))
    assert history[0]["event"] == "start" and history[0]["ranges"]["dynamics.actuator.strength"] == [1.0, 1.0]
    widened = [r for r in history if r["event"] == "range"]
    assert widened and all(r["action"] == "widen" for r in widened)  # every return >= t_high
    assert teacher.entropy() > -np.inf


def _tiny_space(space: ParamSpace) -> ParamSpace:
    return space.select(["dynamics.actuator.strength", "actuation.noise_std"])


def test_checkpoint_resume_restores_teacher_and_trims_history(tmp_path) -> None:
    space = _tiny_space(env_space())
    config = {"name": "adr", "p_b": 1.0, "buffer_size": 1, "t_high": -1e9, "t_low": -2e9, "metric": "return"}
    env = DummyVecEnv([make_env])
    try:
        model = PPO("MultiInputPolicy", env, n_steps=12, batch_size=12, n_epochs=1, seed=0, device="cpu")
        model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
        first = CurriculumCallback(build_teacher(config, space, 1, seed=0), run_dir=str(tmp_path))
        model.learn(24, callback=first)
        columns = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
        for key in ("entropy_npd", "bound/actuation.noise_std/high", "buffer_fill/dynamics.actuator.strength/low",
                    "boundary_evaluations"):
            assert f"curriculum/{key}" in columns, key  # TensorBoard / logger scalars
        ckpt = tmp_path / "checkpoints" / "step-24"
        ckpt.mkdir(parents=True)
        first.save(str(ckpt))
        (tmp_path / "checkpoints" / "LATEST").write_text("step-24\n")
        saved = json.loads((ckpt / STATE_FILE).read_text())
        model.learn(24, callback=first, reset_num_timesteps=False)  # progress after the checkpoint, then "crash"
        resumed = CurriculumCallback(build_teacher(config, space, 1, seed=123), run_dir=str(tmp_path))
        model.num_timesteps = 24
        model.learn(12, callback=resumed, reset_num_timesteps=False)
    finally:
        env.close()
    assert saved["timesteps"] == 24 and saved["state"]["episodes"] == 4
    assert resumed.teacher.episodes == 4 + 2  # restored, then two more episodes
    history = read_history(str(tmp_path / HISTORY_FILE))
    assert [r["event"] for r in history].count("resume") == 1  # learn() again in-process is no resume
    resume_at = next(k for k, r in enumerate(history) if r["event"] == "resume")
    assert all(r["timesteps"] <= 24 for r in history[:resume_at])  # records of the lost segment are gone
    assert history[resume_at]["ranges"] == saved["state"]["ranges"]


def test_unknown_param_and_off_policy_exclusion_are_refused() -> None:
    from stable_baselines3 import SAC

    space = ParamSpace.from_dict({"params": [{"name": "dynamics.nope", "nominal": 1.0, "range": [1, 2]}]})
    env = DummyVecEnv([make_env])
    try:
        model = PPO("MultiInputPolicy", env, n_steps=8, batch_size=8, seed=0, device="cpu")
        with pytest.raises(ValueError, match="dynamics.nope"):
            model.learn(8, callback=CurriculumCallback(build_teacher("uniform", space, 1, 0)))
        sac = SAC("MultiInputPolicy", env, learning_starts=100, seed=0, device="cpu")  # no HER: no exclusion
        adr = build_teacher({"name": "adr", "exclude_boundary": True}, _tiny_space(env_space()), 1, 0)
        with pytest.raises(ValueError, match="her: true"):
            sac.learn(8, callback=CurriculumCallback(adr))
    finally:
        env.close()


def test_filtered_rollout_yields_only_kept_transitions() -> None:
    obs_space = gym.spaces.Box(-np.inf, np.inf, (1,))
    buffer = RolloutBuffer(4, obs_space, gym.spaces.Box(-1, 1, (1,)), device="cpu", n_envs=3)
    for t in range(4):
        obs = np.array([[10 * t + e] for e in range(3)], dtype=np.float32)  # encodes (t, env)
        buffer.add(obs, np.zeros((3, 1)), np.zeros(3), np.zeros(3, bool), __import__("torch").zeros(3),
                   __import__("torch").zeros(3))
    buffer.compute_returns_and_advantage(__import__("torch").zeros(3), np.zeros(3, bool))
    keep = np.ones((4, 3), bool)
    keep[1, 0] = keep[2, 2] = keep[3, 2] = False
    buffer.get = _filtered_get(buffer, keep.T.reshape(-1))
    seen = sorted(int(x) for batch in buffer.get(4) for x in batch.observations.reshape(-1).tolist())
    assert seen == sorted(10 * t + e for t in range(4) for e in range(3) if keep[t, e])


@pytest.mark.parametrize("exclude", [True, False])
def test_off_policy_her_never_samples_excluded_boundary_episodes(exclude: bool) -> None:
    # ADR in "workers" mode with 2 envs: env 0 runs only boundary evaluations, env 1 only training episodes.
    from stable_baselines3 import SAC, HerReplayBuffer

    config = {"name": "adr", "mode": "workers", "boundary_share": 0.5, "exclude_boundary": exclude}
    env = DummyVecEnv([make_env, make_env])
    try:
        sac = SAC("MultiInputPolicy", env, learning_starts=10 * STEPS, batch_size=16, seed=0, device="cpu",
                  replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs={"n_sampled_goal": 2})
        callback = CurriculumCallback(build_teacher(config, _tiny_space(env_space()), 2, seed=0))
        sac.learn(16 * STEPS, callback=callback)  # gradient steps run after learning_starts: sampling works
        buffer = sac.replay_buffer
        stored = buffer.pos  # rows written (the buffer never wrapped)
        finished = stored - stored % STEPS  # rows of complete episodes
        assert (buffer.ep_length[:finished, 1] == STEPS).all()  # the training worker's episodes stay sampleable
        if exclude:
            assert (buffer.ep_length[:stored, 0] == 0).all()
            assert callback.excluded_steps == finished
            rows = buffer.observations["observation"][:stored, 1]  # every sampled transition is one of env 1's
            sampled = buffer.sample(256).observations["observation"].numpy()
            assert all(np.isclose(rows, x).all(axis=1).any() for x in sampled)
            env0 = buffer.observations["observation"][:stored, 0]
            assert not all(np.isclose(rows, x).all(axis=1).any() for x in env0)  # env 0's rows would be caught
        else:
            assert (buffer.ep_length[:finished, 0] == STEPS).all() and callback.excluded_steps == 0
    finally:
        env.close()
