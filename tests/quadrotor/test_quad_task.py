"""The quadrotor task (sim2real.tasks.quadrotor): one vehicle or N in one call give the same numbers, termination
and reward conventions, and the simulator scores its steps with it."""
import gymnasium as gym
import numpy as np
import pytest

import sim2real.envs  # noqa: F401
from robots.quadrotor import crazyflie_spec, get_quadrotor_spec
from sim2real.tasks.quadrotor import (ACTION_MODES, CRASH, CRASH_PENALTY, NONE, OUT_OF_BOUNDS, REFERENCES, Reference,
                                      make_quadrotor_task, observation, position_error)

N = 6


def _states(rng, n):
    """N random plausible states: positions near the arena centre, velocities, rotations, rates."""
    position = rng.uniform([-1, -1, 0.3], [1, 1, 1.8], (n, 3))
    velocity = rng.normal(0, 0.5, (n, 3))
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    rotation = (q * np.sign(np.linalg.det(q))[:, None, None]).reshape(n, 9)
    return position, velocity, rotation, rng.normal(0, 1.0, (n, 3)), rng.uniform(-1, 1, (n, 4))


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("reward_type", ["dense", "sparse"])
def test_a_batch_of_vehicles_gets_what_each_vehicle_gets_alone(name, reward_type):
    task = make_quadrotor_task(name, crazyflie_spec(), "ctbr", reward_type)
    rng = np.random.default_rng(4)
    goal = task.reset(rng, N)
    assert goal.start.shape == (N, 3) and len(goal) == N
    position, velocity, rotation, rates, previous = _states(rng, N)
    position[0] = goal.targets[0, 0] if goal.targets.shape[1] else position[0]  # row 0 on its (first) target
    t = rng.uniform(0, 5, N)
    singles = [goal[i:i + 1] for i in range(N)]
    batch = task.reference(goal, t, position)
    obs = observation(position, velocity, rotation, rates, previous, batch)
    distance = position_error(position, batch)
    ended = task.arena.termination_codes(position, rotation, np.zeros(N, bool)) != NONE
    reward = task.reward(distance, rates, ended)
    assert obs.shape == (N, 25) and obs.dtype == np.float32 and distance.shape == reward.shape == (N,)
    for i in range(N):
        ref = task.reference(singles[i], t[i], position[i])
        assert ref.position.shape == (3,)
        np.testing.assert_allclose(ref.lookahead, batch.lookahead[i])
        np.testing.assert_array_equal(observation(position[i], velocity[i], rotation[i], rates[i], previous[i], ref),
                                      obs[i])
        assert position_error(position[i], ref) == pytest.approx(distance[i])
        assert task.reward(distance[i], rates[i], bool(ended[i])) == pytest.approx(reward[i])
        assert task.success(distance[i]) == task.success(distance)[i]
        assert singles[i].index[0] == goal.index[i]  # waypoints advanced the same way
    if name == "waypoints":
        assert goal.index[0] == 1 and task.progress(singles[0]) == {"waypoint": 1.0}


@pytest.mark.parametrize("mode", ACTION_MODES)
def test_batched_action_maps_match_the_setpoints_of_one_vehicle(mode):
    task = make_quadrotor_task("hover", get_quadrotor_spec("racer"), mode)
    actions = np.random.default_rng(1).uniform(-1.2, 1.2, (N, 4))  # beyond ±1: clipped
    fields = task.command_arrays(actions)
    for i in range(N):
        setpoint = task.action_to_setpoint(actions[i])
        for value, batched in zip(vars(setpoint).values(), fields):
            np.testing.assert_allclose(value, batched[i])


def test_termination_codes_name_crash_and_leaving_the_arena():
    task = make_quadrotor_task("hover", crazyflie_spec())
    upright, flipped = np.eye(3).ravel(), np.diag([1.0, -1.0, -1.0]).ravel()
    low = task.arena.contact_height / 2
    position = np.array([[0, 0, 1.0], [0, 0, 1.0], [0, 0, low], [0, 0, low], [2.5, 0, 1.0], [0, 0, 3.0]])
    rotation = np.stack([upright, flipped, upright, upright, upright, upright])
    on_ground = np.array([True, False, True, False, False, False])  # contact counts only below contact_height
    codes = task.arena.termination_codes(position, rotation, on_ground)
    assert codes.tolist() == [NONE, CRASH, CRASH, NONE, OUT_OF_BOUNDS, OUT_OF_BOUNDS]
    assert task.arena.low_enough_to_touch(position).tolist() == [False, False, True, True, False, False]
    assert task.termination(position[1], rotation[1], False) == "crash"
    assert task.termination(position[4], rotation[4], False) == "out_of_bounds"
    assert task.termination(position[0], rotation[0], True) is None
    here = Reference(np.zeros(3), np.zeros(3), np.zeros(3))
    ok, ended = task.reward(0.0, np.zeros(3), False), task.reward(0.0, np.zeros(3), True)
    assert ok - ended == pytest.approx(CRASH_PENALTY) and position_error(np.zeros(3), here) == 0.0


def test_a_partial_reset_replaces_only_the_finished_rows():
    task = make_quadrotor_task("waypoints", crazyflie_spec())
    rng = np.random.default_rng(0)
    goal = task.reset(rng, 4)
    goal.index[:] = 3
    before = goal[:]
    done = np.array([False, True, False, True])
    fresh = task.reset(rng, int(done.sum()))
    goal.assign(done, fresh)
    np.testing.assert_array_equal(goal.targets[~done], before.targets[~done])
    np.testing.assert_array_equal(goal.targets[done], fresh.targets)
    assert goal.index.tolist() == [3, 0, 3, 0]


def test_the_simulator_scores_each_step_with_the_task():
    env = gym.make("sim2real/CrazyflieTrajectory-v0", reward_type="dense").unwrapped
    env.reset(seed=5)
    for _ in range(10):
        _, reward, terminated, _, info = env.step(env.action_space.sample())
        kin = env.robot.true_kinematics()
        distance = position_error(np.asarray(kin.position), env.task.reference(env.goal[:], env.robot.physics.time,
                                                                                 np.asarray(kin.position)))
        assert info["position_error"] == pytest.approx(distance)
        assert reward == pytest.approx(env.task.reward(distance, kin.body_rates, terminated))
    env.close()
