"""The one deployment builder (sim2real.deployment.build_stack) that `sim2real deploy` and `eval --conditions
emulated` share: what it builds for an arm and a quadcopter, and the one-line refusals before anything connects."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim2real.deploy.arm import ArmEpisodes
from sim2real.deploy.log import DeploymentLog
from sim2real.deploy.multirotor import MultirotorEpisodes
from sim2real.deployment import Link, RunSettings, build_stack, geofence
from sim2real.errors import UserError
from sim2real.launch import resolve

QUAD_LAUNCH = "tests/quad_deploy/data/crazyflie_hover_ppo/launch.yaml"


class Idle:
    def reset_trial(self):
        pass

    def act(self, obs):
        return np.zeros(4)

    def observe(self, *args):
        pass


def test_a_quadcopter_stack_flies_the_launch_files_task(tmp_path):
    config = resolve(QUAD_LAUNCH)
    settings = RunSettings(episodes=2, seed=7, stale_periods=6.0, geofence="-1,-1,-0.1,1,1,1.5",
                           approach_timeout_s=40.0)
    with build_stack(config, Link("crazyflie", uri="udp://127.0.0.1:9"), settings) as stack:
        assert stack.kind == "multirotor" and stack.task.name == "hover" and stack.task.action_mode == "ctbr"
        assert stack.loop_config.rate_hz == 48.0 and stack.loop_config.steps_per_episode == 240
        assert stack.loop_config.stale_limit == pytest.approx(6.0 / 48.0) and stack.loop_config.seed == 7
        log = DeploymentLog(str(tmp_path / "log.jsonl"))
        loop = stack.loop(Idle(), log, config=dataclasses.replace(stack.loop_config, seed=8))
        log.close()
        assert isinstance(loop.runner, MultirotorEpisodes) and loop.config.seed == 8
        assert loop.runner.approach_timeout_s == 40.0
        assert loop.safety.config.geofence_high.tolist() == [1.0, 1.0, 1.5]
        assert stack.loop(Idle(), log).safety is not loop.safety  # each loop counts its own interventions


def test_an_arm_stack_uses_the_robots_rate_and_the_emulated_workspace(calibration_file):
    config = resolve("launch/so101_reach.yaml")
    link = Link("dynamixel", port="/dev/null", calibration=calibration_file, emulated_workspace=True)
    with build_stack(config, link, RunSettings(steps=10)) as stack:
        assert stack.kind == "arm" and stack.task.name == "reach" and stack.loop_config.steps_per_episode == 10
        assert stack.loop_config.rate_hz == stack.task.spec.control_rate_hz
        runner = stack._make_runner()
        assert isinstance(runner, ArmEpisodes) and type(runner.scene).__name__ == "EmulatedWorkspace"


@pytest.mark.parametrize("launch, link, settings, message", [
    ("launch/so101_reach.yaml", Link("crazyflie", uri="udp://127.0.0.1:9"), RunSettings(), "cannot fly through"),
    (QUAD_LAUNCH, Link("dynamixel", port="/dev/null"), RunSettings(), "arm tasks only"),
    (QUAD_LAUNCH, Link("crazyflie"), RunSettings(), "--uri is required"),
    (QUAD_LAUNCH, Link("mavlink"), RunSettings(), "--url is required"),
    (QUAD_LAUNCH, Link("crazyflie", uri="udp://127.0.0.1:9"), RunSettings(rate_hz=900.0), "--rate-hz must be in"),
    (QUAD_LAUNCH, Link("crazyflie", uri="udp://127.0.0.1:9"), RunSettings(geofence="0,0,0,1,1"), "--geofence"),
    ("launch/so101_reach.yaml", Link("dynamixel", port="/dev/null", camera="0"), RunSettings(), "--camera is"),
    ("launch/so101_reach.yaml", Link("dynamixel", port="/dev/null"), RunSettings(goals=[np.array([9.0, 0, 0])]),
     "outside the workspace"),
])
def test_mistakes_are_one_line_before_anything_connects(launch, link, settings, message):
    with pytest.raises(UserError, match=message) as caught:
        build_stack(resolve(launch), link, settings)
    assert "\n" not in str(caught.value)


def test_the_default_geofence_scales_with_the_vehicle():
    low, high = geofence(None, 2.0)
    assert low.tolist() == [-3.0, -3.0, -0.2] and high.tolist() == [3.0, 3.0, 4.0]
    with pytest.raises(UserError, match="each low below its high"):
        geofence("0,0,0,1,1,-1", 1.0)
