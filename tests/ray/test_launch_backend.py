"""Launch-file rules of ``backend`` / ``ray.*`` and the CLI's bad-input lines (no Ray cluster needed)."""
from __future__ import annotations

import time

import pytest

from sim2real.cli import main
from sim2real.errors import UserError
from sim2real.launch import resolve
from sim2real.ray_backend.sweep import grid, plan, split_values


@pytest.mark.parametrize("overrides, actors, per_actor, n_envs", [
    (["n_envs=4"], 4, 1, 4),
    (["n_envs=4", "ray.num_actors=2"], 2, 2, 4),
    (["n_envs=6", "ray.envs_per_actor=3"], 2, 3, 6),
    (["ray.num_actors=3", "ray.envs_per_actor=2"], 3, 2, 6),
])
def test_ray_actors_times_envs_per_actor_is_n_envs(overrides, actors, per_actor, n_envs):
    config = resolve(None, ["backend=ray", *overrides])  # the default experiment leaves n_envs unset
    assert (config["ray"]["num_actors"], config["ray"]["envs_per_actor"], config["n_envs"]) == \
        (actors, per_actor, n_envs)
    assert config["ray"]["address"] is None


def test_local_backend_drops_the_ray_section_and_refuses_its_keys():
    config = resolve("so101_reach")
    assert config["backend"] == "local" and "ray" not in config
    with pytest.raises(UserError, match=r"ray.num_actors: only used with backend: ray"):
        resolve("so101_reach", ["ray.num_actors=2"])


@pytest.mark.parametrize("overrides, message", [
    (["n_envs=4", "ray.num_actors=3"], r"ray.num_actors: 3 does not divide n_envs 4"),
    (["n_envs=5", "ray.num_actors=2", "ray.envs_per_actor=2"], r"n_envs: 5, but ray.num_actors 2 x"),
    (["ray.cpus_per_actor=-1"], r"ray.cpus_per_actor: -1.0 is out of range"),
    (["backend=slurm"], r"backend: 'slurm' is not allowed"),
])
def test_bad_ray_settings_are_one_line(overrides, message):
    with pytest.raises(UserError, match=message):
        resolve("so101_reach", ["backend=ray", *overrides] if "backend=slurm" not in overrides else overrides)


def test_sweep_grid_keeps_brackets_and_names_bad_points(tmp_path):
    assert split_values("[64,64],[256,256]") == ["[64,64]", "[256,256]"]
    assert grid(["seed=0,1", "algo.learning_rate=1e-3,3e-4"]) == [
        ["seed=0", "algo.learning_rate=1e-3"], ["seed=0", "algo.learning_rate=3e-4"],
        ["seed=1", "algo.learning_rate=1e-3"], ["seed=1", "algo.learning_rate=3e-4"]]
    points = plan("so101_reach", ["seed=0,1", "algo.net_arch=[16,16],[32]"], str(tmp_path))
    assert [p.run_dir.rsplit("/", 1)[1] for p in points] == [
        "net_arch_16_16_-s0", "net_arch_32_-s0", "net_arch_16_16_-s1", "net_arch_32_-s1"]
    assert points[0].group == "algo.net_arch=[16,16]"
    with pytest.raises(UserError, match=r"seed=1 algo.learning_rate=abc: algo.learning_rate: expected float"):
        plan("so101_reach", ["seed=1", "algo.learning_rate=abc"], str(tmp_path))
    with pytest.raises(UserError, match=r"'seed': expected key=value"):
        grid(["seed"])
    with pytest.raises(UserError, match="an empty value"):
        grid(["seed=0,,1"])


def test_cli_flags(capsys):
    assert main(["train", "so101_reach", "ray.num_actors=2"]) == 2
    assert "only used with backend: ray" in capsys.readouterr().err
    assert main(["eval", "runs/none", "--backend", "ray"]) == 2
    assert "--backend ray and several policies need --conditions" in capsys.readouterr().err
    assert main(["eval", "runs/none", "--conditions", "train", "--ray-address", "127.0.0.2:1"]) == 2
    assert "--ray-address: only used with --backend ray" in capsys.readouterr().err


@pytest.mark.parametrize("address, message", [("127.0.0.1:1", "no Ray head answers at 127.0.0.1:1"),
                                              ("localhost", "'localhost' is not HOST:PORT"),
                                              ("head:99999", "'head:99999' is not HOST:PORT")])
def test_an_unreachable_or_malformed_address_is_one_line_at_once(address, message):
    from sim2real.errors import UserError
    from sim2real.ray_backend.cluster import connect

    started = time.monotonic()
    with pytest.raises(UserError, match=message):
        connect(address)
    assert time.monotonic() - started < 30  # Ray alone retries an unreachable head for minutes
