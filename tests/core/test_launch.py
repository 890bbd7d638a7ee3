import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim2real.cli import main
from sim2real.errors import UserError
from sim2real.launch import SCHEMA, resolve

LAUNCH_DIR = "launch"


def write(tmp_path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


def test_shipped_launch_files_resolve():
    import glob

    files = glob.glob(f"{LAUNCH_DIR}/*.yaml")
    assert files
    for path in files:
        config = resolve(path)
        assert config["env"]["id"].startswith("sim2real/")


def test_overrides_take_precedence_and_are_typed(tmp_path):
    config = resolve(f"{LAUNCH_DIR}/panda_reach.yaml", ["algo.learning_rate=1e-3", "seed=3", "algo.net_arch=[64, 64]"])
    assert config["algo"]["learning_rate"] == pytest.approx(1e-3)
    assert config["seed"] == 3 and config["algo"]["net_arch"] == [64, 64]


@pytest.mark.parametrize("text,overrides,fragment", [
    ("algo:\n  lr: 0.1\n", [], "unknown key 'algo.lr'"),
    ("seed: -1\n", [], "seed: -1 is out of range"),
    ("n_envs: two\n", [], "n_envs: expected int"),
    ("algo:\n  name: dqn\n", [], "choose from: ppo, a2c, sac, td3, ddpg"),
    ("env:\n  id: sim2real/Nope-v0\n", [], "env.id"),
    ("algo: 3\n", [], "algo: expected a mapping"),
    ("- 1\n- 2\n", [], "must be a mapping"),
    ("algo:\n  name: ppo\n  buffer_size: 1000\n", [], "algo.buffer_size does not apply to ppo"),
    ("seed: 1\n", ["algo.learning_rate=-1"], "algo.learning_rate: -1.0 is out of range"),
    ("seed: 1\n", ["gamma"], "must look like key.subkey=value"),
    ("seed: [1\n", [], "invalid YAML at line"),
    ("algo:\n  learning_rate: .nan\n", [], "finite"),
])
def test_invalid_launch_files_name_the_key(tmp_path, text, overrides, fragment):
    with pytest.raises(UserError, match=None) as err:
        resolve(write(tmp_path, text), overrides)
    assert fragment in str(err.value)


def test_cli_reports_one_line_and_exit_code_2(tmp_path, capsys):
    path = write(tmp_path, "budget:\n  total_timesteps: 0\n")
    assert main(["train", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sim2real: error: budget.total_timesteps: 0 is out of range [1, 10000000000]"]
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "launch file not found" in capsys.readouterr().err


def test_cli_process_has_no_traceback(tmp_path):
    path = write(tmp_path, "env:\n  obs_mode: depth\n")
    proc = subprocess.run([sys.executable, "-m", "sim2real.cli", "train", path], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "env.obs_mode" in proc.stderr


def _leaves(schema, prefix=""):
    for key, spec in schema.items():
        if isinstance(spec, dict):
            yield from _leaves(spec, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
keys = st.sampled_from(sorted(_leaves(SCHEMA)) + ["algo", "env", "budget", "bogus", "env.bogus"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.dictionaries(keys, yaml_values, max_size=4))
def test_malformed_launch_files_never_crash(tmp_path, entries):
    """Any document either resolves to a valid experiment or fails with a one-line UserError."""
    doc: dict = {}
    for dotted, value in entries.items():
        cursor = doc
        parts = dotted.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {}) if isinstance(cursor.get(part, {}), dict) else {}
        cursor[parts[-1]] = value
    path = write(tmp_path, yaml.safe_dump(doc))
    try:
        config = resolve(path)
    except UserError as err:
        assert "\n" not in str(err) and str(err)
    else:
        assert resolve(None, [f"seed={config['seed']}"])["seed"] == config["seed"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80))
def test_arbitrary_text_never_crashes(tmp_path, text):
    try:
        resolve(write(tmp_path, text))
    except UserError as err:
        assert "\n" not in str(err)


def test_control_mode_defaults_per_env_and_is_checked_against_it(tmp_path):
    assert resolve(None)["env"]["control_mode"] == "ee"
    assert resolve(None, ["env.id=sim2real/CrazyflieHover-v0"])["env"]["control_mode"] == "ctbr"
    with pytest.raises(UserError, match="not a mode of sim2real/CrazyflieHover-v0"):
        resolve(None, ["env.id=sim2real/CrazyflieHover-v0", "env.control_mode=joints"])
    with pytest.raises(UserError, match="not a mode of sim2real/PandaReach-v0"):
        resolve(None, ["env.control_mode=rpm"])
