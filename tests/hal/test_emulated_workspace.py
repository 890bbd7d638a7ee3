"""The emulated workspace: the task's scene simulated around a measured arm (real PyBullet, no mocks)."""
from __future__ import annotations

import numpy as np
import pytest

from robots.registry import get_robot_spec
from sim2real.hal.emulated_workspace import EmulatedWorkspace
from sim2real.hal.types import RobotState
from sim2real.sim import PyBulletRobot, PyBulletWorld
from sim2real.tasks import make_task

SPEC = get_robot_spec("so101")
CUBE = np.array([-0.06, 0.0, 0.0125])  # on the table, in the middle of the SO-101 workspace (m)
PERIOD = 0.04  # s: the SO-101's 25 Hz control period


@pytest.fixture(scope="module")
def push():
    return make_task("push", SPEC, "sparse")


def _joint_path(task, start, end, points: int) -> list[np.ndarray]:
    """Joint angles (rad) putting the tool at ``points`` evenly spaced points from ``start`` to ``end`` (m)."""
    world = PyBulletWorld()
    arm = PyBulletRobot(world, SPEC, task.layout.robot_base)
    q, path = np.asarray(SPEC.home, dtype=float), []
    try:
        for target in np.linspace(start, end, points):
            for _ in range(40):  # damped least squares to convergence
                arm.reset_joints(q)
                q = np.clip(arm.inverse_kinematics(target, None, arm.read_state()), SPEC.lower, SPEC.upper)
            arm.reset_joints(q)
            assert np.linalg.norm(arm.read_state().ee_position - target) < 2e-3
            path.append(q.copy())
    finally:
        world.close()
    return path


def _state(positions: np.ndarray, timestamp: float) -> RobotState:
    zeros = np.zeros(len(positions))
    return RobotState(np.asarray(positions, dtype=float), zeros, zeros, np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]),
                      np.zeros(3), timestamp)


def _sweep(task, path: list[np.ndarray], period: float = PERIOD, settle: int = 25) -> np.ndarray:
    """Track ``path`` (one state per ``period`` s, then ``settle`` periods at rest); the cube's final position."""
    with EmulatedWorkspace(task) as workspace:
        workspace.set_pose("object", CUBE)
        for i, q in enumerate(path + [path[-1]] * settle):
            workspace.track(_state(q, 1000.0 + i * period))
        position, _ = workspace.pose("object")
        assert np.allclose(workspace.twin.read_state().positions, path[-1])  # the twin ends where the arm is
    return position


def test_sweeping_the_tool_through_the_cube_pushes_it_and_passing_by_leaves_it_at_rest(push):
    through = _sweep(push, _joint_path(push, (-0.14, 0.0, 0.02), (0.0, 0.0, 0.02), 50))
    assert through[0] > CUBE[0] + 0.04 and abs(through[1]) < 0.02  # pushed forward along +x
    assert through[2] == pytest.approx(CUBE[2], abs=2e-3)  # still on the table
    for start, end in (((-0.14, 0.0, 0.08), (0.0, 0.0, 0.08)), ((-0.14, 0.08, 0.02), (0.0, 0.08, 0.02))):
        away = _sweep(push, _joint_path(push, start, end, 50))  # above the cube; beside it
        assert np.linalg.norm(away - CUBE) < 1e-4


def test_the_cube_leaves_the_tool_with_the_tool_velocity(push):
    """The same path, fast and slow: a fast push slides the cube further (contacts see the arm's velocity)."""
    start, end = (-0.14, 0.0, 0.02), (-0.04, 0.0, 0.02)
    fast = _sweep(push, _joint_path(push, start, end, 10), PERIOD)
    slow = _sweep(push, _joint_path(push, start, end, 60), PERIOD)
    assert slow[0] > CUBE[0] + 0.01  # both pushed it ...
    assert fast[0] > slow[0] + 0.005  # ... the fast one (0.28 m/s vs 0.05 m/s) 8 mm further (teleports: 2 mm)


def test_first_and_stale_measurements_teleport_without_simulating(push):
    with EmulatedWorkspace(push) as workspace:
        workspace.set_pose("object", CUBE)
        home = np.asarray(SPEC.home, dtype=float)
        workspace.track(_state(home, 5.0))
        assert np.allclose(workspace.twin.read_state().positions, home) and workspace.world.steps == 0
        workspace.track(_state(home + 0.3, 5.0))  # not newer: teleported, nothing simulated
        assert np.allclose(workspace.twin.read_state().positions, home + 0.3) and workspace.world.steps == 0
        workspace.track(_state(home, 5.0 + PERIOD))  # 40 ms of physics in 2 ms steps
        assert workspace.world.steps == round(PERIOD / workspace.world.physics.timestep)
        workspace.track(_state(home, 100.0))  # a long pause: at most max_step of physics
        assert workspace.world.steps == round((PERIOD + workspace.max_step) / workspace.world.physics.timestep)
        assert np.allclose(workspace.pose("object")[0], CUBE, atol=1e-4)


def test_reach_goal_marker_round_trips_and_renders():
    reach = make_task("reach", SPEC, "sparse")
    with EmulatedWorkspace(reach) as workspace:
        goal = reach.reset(workspace.twin, workspace, np.random.default_rng(0))
        position, orientation = workspace.pose("goal")
        assert np.allclose(position, goal) and np.allclose(orientation, (0.0, 0.0, 0.0, 1.0))
        assert "object" not in workspace.world.bodies
        from sim2real.sim import Camera as View

        image = workspace.render((View(width=16, height=12), View(width=16, height=12)))
        assert image.shape == (12, 32, 3) and image.dtype == np.uint8
