"""No code runs from a loaded file: SB3 model zips whose ``data`` carries cloudpickle payloads, ``.pth`` entries
with pickled objects and vision pipelines pointing outside their folder, at every entry point that loads them
(``eval RUN``, ``eval X.zip --launch``, ``deploy RUN``, ``train --resume``, a vision pipeline folder).

Each payload, when unpickled, creates a marker file; the marker must never appear. A clean zip loads as before:
the same actions as stable-baselines3's own ``load``, and a resumed run keeps its optimizer state and step count.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sim2real.cli import main

ZOO_VISION = "policies/zoo/so101_reach_vision"


def _audit_tools():
    """``benchmarks/payload_audit.py``: the payload builders the audit script and these tests share."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "payload_audit.py"
    spec = importlib.util.spec_from_file_location("payload_audit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


audit = _audit_tools()
_poison_data, _poison_pth, _copy_run, PAYLOAD_KEYS = audit.poison_data, audit.poison_pth, audit.copy_run, \
    audit.PAYLOAD_KEYS


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


def test_the_payload_runs_code_when_stable_baselines3_unpickles_it(tiny_run, tmp_path, marker):
    """The payload used below is live: SB3's own reader creates the marker (so the other tests can fail)."""
    from stable_baselines3.common.save_util import load_from_zip_file

    zip_path = tmp_path / "model.zip"
    shutil.copy(Path(tiny_run) / "final" / "model.zip", zip_path)
    _poison_data(zip_path, marker)
    load_from_zip_file(zip_path)
    assert marker.exists()


def _observations(config: dict, n: int = 5) -> list:
    from sim2real.train import make_env_fn

    env = make_env_fn(config, rank=0)()
    try:
        return [env.reset(seed=seed)[0] for seed in range(n)]
    finally:
        env.close()


def _sb3_actions(config: dict, zip_path: str, observations: list) -> np.ndarray:
    """Actions of stable-baselines3's own load of a clean zip (the reference)."""
    from sim2real.sb3_safe_load import algo_class
    from sim2real.train import make_env_fn

    env = make_env_fn(config, rank=0)()
    try:
        model = algo_class(config["algo"]["name"]).load(zip_path, env=env, device="cpu")
        return np.stack([model.predict(o, deterministic=True)[0] for o in observations])
    finally:
        env.close()


def test_a_clean_model_loads_with_the_same_actions_and_a_payload_model_runs_no_code(tiny_run, tmp_path, marker):
    from sim2real.policy_files import load_policy
    from sim2real.train import run_model_path

    config, clean_zip = run_model_path(tiny_run)
    observations = _observations(config)
    reference = _sb3_actions(config, clean_zip, observations)
    run = _copy_run(tiny_run, tmp_path / "run")
    audit.poison_run(run, marker)
    for path, launch in ((str(run), None), (str(run / "final" / "model.zip"), config), (tiny_run, None)):
        policy, _ = load_policy(path, launch)
        assert np.array_equal(np.stack([policy.act(o) for o in observations]), reference), path
    assert not marker.exists()


def test_eval_of_a_run_and_of_a_zip_with_launch_runs_no_code(tiny_run, tmp_path, marker):
    run = _copy_run(tiny_run, tmp_path / "run")
    audit.poison_run(run, marker)
    common = ["--conditions", "train", "--episodes", "1", "--videos", "0", "--n-envs", "1"]
    assert main(["eval", str(run), *common, "--out", str(tmp_path / "r1")]) == 0
    assert main(["eval", str(run / "final" / "model.zip"), "--launch", str(run / "launch.yaml"), *common,
                 "--out", str(tmp_path / "r2")]) == 0
    assert not marker.exists()


def test_deploy_of_a_run_runs_no_code(tiny_run, tmp_path, marker, capsys):
    run = _copy_run(tiny_run, tmp_path / "run")
    audit.poison_run(run, marker)
    code = main(["deploy", str(run), "--driver", "dynamixel", "--port", str(tmp_path / "no-such-port")])
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert code == 2 and "\n" not in err and "Traceback" not in err  # the policy loaded; the missing bus is refused


def test_train_resume_runs_no_code_and_resumes_the_checkpoint(tiny_run, tmp_path, marker):
    from sim2real.train import latest_checkpoint

    run = _copy_run(tiny_run, tmp_path / "run")
    shutil.rmtree(run / "final")
    launch = yaml.safe_load((run / "launch.yaml").read_text())
    launch["budget"]["total_timesteps"] = 350  # 50 steps past the checkpoint at 300
    (run / "launch.yaml").write_text(yaml.safe_dump(launch))
    checkpoint = Path(latest_checkpoint(str(run)))
    _poison_data(checkpoint / "model.zip", marker)
    assert main(["train", "--resume", str(run)]) == 0
    assert not marker.exists()
    with zipfile.ZipFile(run / "final" / "model.zip") as archive:
        assert json.loads(archive.read("data"))["num_timesteps"] == 350


def test_a_safe_load_keeps_what_a_resume_needs(tiny_run):
    """Optimizer state, step count, entropy coefficient, schedules and the HER buffer class are those of SB3's
    own load of the same checkpoint."""
    from sim2real.launch import resolve
    from sim2real.sb3_safe_load import algo_class, load_sb3_model
    from sim2real.train import latest_checkpoint, make_vec_env

    config = resolve(os.path.join(tiny_run, "launch.yaml"))
    path = os.path.join(latest_checkpoint(tiny_run), "model.zip")
    env = make_vec_env(config, 1)
    try:
        safe = load_sb3_model(config, path, env)
        plain = algo_class("sac").load(path, env=env, device="cpu")
    finally:
        env.close()
    assert safe.num_timesteps == plain.num_timesteps == 300 and safe._n_updates == plain._n_updates
    assert type(safe.replay_buffer) is type(plain.replay_buffer) and safe.train_freq == plain.train_freq
    assert safe.lr_schedule(0.5) == plain.lr_schedule(0.5) and safe.target_entropy == plain.target_entropy
    assert torch.equal(safe.log_ent_coef, plain.log_ent_coef)
    for name in ("actor", "critic"):
        mine, theirs = getattr(safe, name).optimizer.state_dict(), getattr(plain, name).optimizer.state_dict()
        assert mine["param_groups"] == theirs["param_groups"]
        for key, state in theirs["state"].items():
            assert all(torch.equal(mine["state"][key][k], v) for k, v in state.items())


def test_a_payload_nested_in_policy_kwargs_is_replaced_by_the_launch_files(tiny_run, tmp_path, marker):
    from sim2real.policy_files import load_policy
    from sim2real.train import run_model_path

    config, clean_zip = run_model_path(tiny_run)
    zip_path = tmp_path / "model.zip"
    shutil.copy(clean_zip, zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        data = json.loads(archive.read("data"))
    _poison_data(zip_path, marker, keys=("probe",))
    with zipfile.ZipFile(zip_path) as archive:
        payload = json.loads(archive.read("data"))["probe"]
    data["policy_kwargs"]["activation_fn"] = payload
    audit.rewrite_zip(zip_path, {"data": json.dumps(data).encode()})
    observations = _observations(config)
    policy, _ = load_policy(str(zip_path), config)
    assert np.array_equal(np.stack([policy.act(o) for o in observations]),
                          _sb3_actions(config, clean_zip, observations))
    assert not marker.exists()


@pytest.mark.parametrize("algo", ["ppo", "td3"])
def test_ppo_and_td3_zips_load_without_their_payloads_and_act_as_stable_baselines3_loads_them(algo, tmp_path,
                                                                                             marker):
    from sim2real.launch import resolve
    from sim2real.sb3_safe_load import load_sb3_model
    from sim2real.train import build_model, make_vec_env

    settings = {"ppo": "{name: ppo, net_arch: [16, 16], n_steps: 64, batch_size: 32}",
                "td3": "{name: td3, net_arch: [16, 16], her: true}"}[algo]
    launch = tmp_path / "launch.yaml"
    launch.write_text(f"name: t\nenv: {{id: sim2real/SO101Reach-v0}}\nalgo: {settings}\noutput_dir: {tmp_path}\n")
    config = resolve(str(launch))
    env = make_vec_env(config, 1)
    try:
        build_model(config, env, None).save(tmp_path / "clean.zip")
        shutil.copy(tmp_path / "clean.zip", tmp_path / "payload.zip")
        _poison_data(tmp_path / "payload.zip", marker, PAYLOAD_KEYS + ("clip_range", "action_noise"))
        model = load_sb3_model(config, str(tmp_path / "payload.zip"), env)
    finally:
        env.close()
    observations = _observations(config)
    actions = np.stack([model.predict(o, deterministic=True)[0] for o in observations])
    assert np.array_equal(actions, _sb3_actions(config, str(tmp_path / "clean.zip"), observations))
    assert not marker.exists()


def test_a_pth_entry_with_pickled_objects_is_refused_in_one_line(tiny_run, tmp_path, marker, capsys):
    zip_path = tmp_path / "model.zip"
    shutil.copy(Path(tiny_run) / "final" / "model.zip", zip_path)
    _poison_pth(zip_path, marker)
    code = main(["eval", str(zip_path), "--launch", os.path.join(tiny_run, "launch.yaml"), "--conditions", "train",
                 "--episodes", "1", "--videos", "0", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(zip_path) in err and "policy.pth" in err and "refused" in err
    assert not marker.exists()


def test_a_tensor_entry_sb3_never_writes_is_refused(tiny_run, tmp_path, capsys):
    """SB3 looks each ``.pth`` name up as an attribute path of the model: only its own names are accepted."""
    import io

    zip_path = tmp_path / "model.zip"
    shutil.copy(Path(tiny_run) / "final" / "model.zip", zip_path)
    buffer = io.BytesIO()
    torch.save({}, buffer)
    audit.rewrite_zip(zip_path, {"env.pth": buffer.getvalue()})
    code = main(["eval", str(zip_path), "--launch", os.path.join(tiny_run, "launch.yaml"), "--conditions", "train",
                 "--episodes", "1", "--videos", "0", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "env.pth" in err and "refused" in err


def _vision_pipeline(dst: Path) -> Path:
    shutil.copytree(ZOO_VISION, dst)
    return dst


def test_a_vision_pipeline_with_a_payload_model_runs_no_code_and_acts_as_the_clean_one(tmp_path, marker):
    from sim2real.policy_files import load_batch_policy

    clean, _ = load_batch_policy(ZOO_VISION, None)
    folder = _vision_pipeline(tmp_path / "pipe")
    _poison_data(folder / "state" / "final" / "model.zip", marker)
    poisoned, config = load_batch_policy(str(folder), None)
    assert not marker.exists()
    rng, meta = np.random.default_rng(0), clean.perception.meta
    observations = [{"image": rng.integers(0, 255, (meta.height, meta.width, 3), dtype=np.uint8),
                     "proprio": rng.normal(size=6).astype(np.float32)} for _ in range(4)]
    assert np.array_equal(poisoned.act_batch(observations), clean.act_batch(observations))


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "symlink"])
def test_a_vision_pipeline_referencing_files_outside_its_folder_is_refused(tiny_run, tmp_path, marker, capsys,
                                                                         escape):
    outside = _copy_run(tiny_run, tmp_path / "elsewhere")
    audit.poison_run(outside, marker)
    folder = _vision_pipeline(tmp_path / "pipe")
    shutil.rmtree(folder / "state")
    if escape == "symlink":
        os.symlink(outside, folder / "state")
        reference = "state"
    else:
        reference = str(outside) if escape == "absolute" else "../elsewhere"
    spec = json.loads((folder / "pipeline.json").read_text())
    (folder / "pipeline.json").write_text(json.dumps({**spec, "state_policy": reference}))
    code = main(["eval", str(folder), "--conditions", "train", "--episodes", "1", "--videos", "0",
                 "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(folder) in err and "inside its own folder" in err
    assert not marker.exists()


def test_a_symlinked_model_leading_outside_the_pipeline_is_refused(tiny_run, tmp_path, marker):
    from sim2real.errors import UserError
    from sim2real.policy_files import load_batch_policy

    outside = tmp_path / "elsewhere.zip"
    shutil.copy(Path(tiny_run) / "final" / "model.zip", outside)
    _poison_data(outside, marker)
    folder = _vision_pipeline(tmp_path / "pipe")
    (folder / "state" / "final" / "model.zip").unlink()
    os.symlink(outside, folder / "state" / "final" / "model.zip")
    with pytest.raises(UserError, match="leads outside the pipeline folder"):
        load_batch_policy(str(folder), None)
    assert not marker.exists()


def test_a_model_declaring_other_space_shapes_is_refused_in_one_line(tmp_path):
    """SB3's own space check compares the unpickled spaces; the safe load reads the shapes SB3 writes as JSON."""
    from sim2real.errors import UserError
    from sim2real.launch import resolve
    from sim2real.sb3_safe_load import load_sb3_model
    from sim2real.train import make_env_fn

    launch = tmp_path / "launch.yaml"
    launch.write_text(f"name: t\nenv: {{id: sim2real/SO101Reach-v0}}\nalgo: {{name: ppo}}\noutput_dir: {tmp_path}\n")
    config = resolve(str(launch))
    env = make_env_fn(config, rank=0)()
    try:
        with pytest.raises(UserError, match=r"action space has shape \(4,\), and this env's has \(3,\)") as refused:
            load_sb3_model(config, "tests/quad_deploy/data/crazyflie_hover_ppo/model.zip", env)
    finally:
        env.close()
    assert "\n" not in str(refused.value)
