"""Launch-file ``randomizers:`` entries: the shipped DR launch files build their envs and models, mistakes are one
UserError line naming the entry, per-env values set through a real SubprocVecEnv show up in info, and the CLI."""
from __future__ import annotations

import glob

import gymnasium as gym
import numpy as np
import pytest

from randomizers.wrappers import randomizers_in
from sim2real.cli import main
from sim2real.errors import UserError
from sim2real.launch import resolve
from sim2real.train import build_model, make_env_fn, make_vec_env

# The SB3 arm DR launch files (the quadcopter RL² DR files are tested in tests/quadrotor).
DR_FILES = sorted(glob.glob("launch/panda_*_dr.yaml"))


def test_three_arm_dr_launch_files_exist() -> None:
    assert [f.split("/")[-1] for f in DR_FILES] == ["panda_push_dr.yaml", "panda_reach_dr.yaml",
                                                     "panda_reach_rgb_dr.yaml"]


@pytest.mark.parametrize("path", DR_FILES)
def test_dr_launch_file_resolves_and_builds_env_and_model(path: str) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    config = resolve(path, ["algo.buffer_size=1000"] if "rgb" not in path else ["algo.n_steps=64", "algo.batch_size=64"])
    groups = [e["group"] for e in config["randomizers"]]
    env = make_env_fn(config, rank=0)()
    chain = [w.GROUP for w in randomizers_in(env.env)]  # Monitor outermost
    assert chain == [g for g in ("sensing", "actuation", "visual", "dynamics") if g in groups]  # outer → inner
    assert isinstance(env.env.env, gym.wrappers.TimeLimit) or "TimeLimit" in repr(env)
    obs, info = env.reset(seed=1)
    assert any(k.startswith(tuple(f"{g}." for g in groups)) for k in info["randomization"])
    obs, *_ = env.step(env.action_space.sample())
    env.close()
    vec = DummyVecEnv([make_env_fn(config, rank=0)])
    model = build_model(config, vec, None)
    assert model.policy is not None
    vec.close()


@pytest.mark.parametrize("entries,fragment", [
    ("[{group: nope}]", "randomizers[0] (nope): unknown group"),
    ("[{group: dynamics, params: [{name: dynamics.object.mass, range: [0.5, 2]}]}]",
     "randomizers[0] (dynamics): randomization param 'dynamics.object.mass': unknown name"),
    ("[{group: sensing}, {group: dynamics, params: [{name: dynamics.link.mass, range: [2, 1]}]}]",
     "randomizers[1] (dynamics): randomization param 'dynamics.link.mass': range low 2.0 > high 1.0"),
    ("[{group: dynamics, params: [{name: dynamics.joint.friction, range: [-1, 0]}]}]", "outside hard limits [0.0, 20.0]"),
    ("[{group: visual, textures: {families: [plaid]}}]", "randomizers[0] (visual): unknown texture family 'plaid'"),
    ("[{group: visual, texture_cache: 3}]", "texture_cache must be an integer >= 64"),
    ("[{group: sensing, textures: {n_unique: 3}}]", "only apply to group visual"),
    ("[{group: actuation}, {group: actuation}]", "randomizers[1] (actuation): group already listed"),
    ("[{group: actuation, colour: red}]", "unknown key(s) ['colour']"),
    ("[{group: sensing, params: [{name: sensing.image.noise_std, range: [0, 1]}]}]", "unknown name"),  # state obs
])
def test_bad_entries_are_one_line_user_errors(tmp_path, entries: str, fragment: str) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(f"env: {{id: sim2real/PandaReach-v0}}\nrandomizers: {entries}\n")
    with pytest.raises(UserError) as err:
        resolve(str(path))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_corrupt_user_texture_is_named(tmp_path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "table.png").write_bytes(b"not a png")
    path = tmp_path / "exp.yaml"
    path.write_text(f"env: {{id: sim2real/PandaReach-v0, obs_mode: rgb}}\nalgo: {{name: ppo}}\n"
                    f"randomizers: [{{group: visual, textures: {{directory: {tmp_path / 'photos'}}}}}]\n")
    assert main(["train", str(path)]) == 2  # the CLI prints the one line and exits 2, before any training
    with pytest.raises(UserError, match=r"randomizers\[0\] \(visual\): texture image .*table.png is corrupt"):
        resolve(str(path))


def test_env_method_reaches_randomizers_in_subproc_vec_env() -> None:
    config = resolve("launch/panda_reach_dr.yaml", ["n_envs=2"])
    vec = make_vec_env(config, 2)
    try:
        assert type(vec).__name__ == "SubprocVecEnv"
        vec.env_method("set_randomization_values", {"dynamics.link.mass": 1.25, "actuation.latency": 1},
                       indices=[1])
        vec.reset()
        infos = vec.reset_infos
        assert infos[1]["randomization"]["dynamics.link.mass"] == 1.25
        assert infos[1]["randomization"]["actuation.latency"] == 1
        assert infos[0]["randomization"]["dynamics.link.mass"] != 1.25  # only env 1 was pinned
        vec.env_method("set_randomization_enabled", False)
        vec.reset()
        for info in vec.reset_infos:
            assert info["randomization"]["dynamics.link.mass"] == 1.0 and info["randomization"]["actuation.latency"] == 0
        vec.env_method("set_randomization_enabled", True)
        vec.env_method("clear_randomization_values")
        vec.reset()
        _, _, _, infos = vec.step(np.zeros((2, *vec.action_space.shape), dtype=np.float32))
        assert vec.reset_infos[0]["randomization"] != vec.reset_infos[1]["randomization"]  # per-env seeds
        space = vec.env_method("get_randomization_space", indices=[0])[0]
        assert "actuation.period_jitter" in [e["name"] for e in space["params"]]
    finally:
        vec.close()


def test_cli_list_and_preview(tmp_path, capsys) -> None:
    assert main(["randomizers", "list", "sim2real/PandaPush-v0", "--json"]) == 0
    rows = __import__("json").loads(capsys.readouterr().out)
    names = {r["name"]: r for r in rows}
    assert {"dynamics.object.scale", "dynamics.joint.friction", "visual.light.azimuth", "visual.distractor.count",
            "actuation.period_jitter", "sensing.image.blur_sigma"} <= set(names)
    assert names["visual.camera.fov"]["rgb_only"] and not names["dynamics.object.mass"]["rgb_only"]
    assert main(["randomizers", "list", "sim2real/PandaReach-v0", "--json"]) == 0
    assert "dynamics.object.mass" not in capsys.readouterr().out
    assert main(["randomizers", "list", "sim2real/Nope-v0"]) == 2
    out = tmp_path / "grid.png"
    assert main(["randomizers", "preview", "launch/panda_reach_rgb_dr.yaml", "--n", "4", "--out", str(out),
                 "--scale", "1"]) == 0
    import cv2

    grid = cv2.imread(str(out))
    assert grid.shape == (2 * 86 + 2, 2 * 86 + 2, 3)  # 2x2 84-px images with 2-px gaps
    cells = [grid[2:86, 2:86], grid[2:86, 88:172], grid[88:172, 2:86], grid[88:172, 88:172]]
    assert min(np.abs(a.astype(float) - b).mean() for i, a in enumerate(cells) for b in cells[i + 1:]) > 5.0
