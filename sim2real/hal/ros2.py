"""ROS 2 arm driver: joint targets as ``std_msgs/Float64MultiArray`` (ros2_control forward_command_controller),
state from ``sensor_msgs/JointState``. Needs ``rclpy`` (a sourced ROS 2 installation); without it,
:func:`require_rclpy` raises a one-line :class:`UserError` saying so."""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from robots.kinematic_model import KinematicModel
from robots.spec import RobotSpec
from sim2real.errors import UserError
from sim2real.hal.model_arm import ModelArm
from sim2real.hal.types import JointCommand, RobotState

ROS2_MISSING = ("the ros2 driver needs rclpy, which is not importable here: source your ROS 2 installation "
                "(e.g. `source /opt/ros/jazzy/setup.bash`) in the shell that runs sim2real")


def require_rclpy() -> Any:
    """The ``rclpy`` module, or a :class:`UserError` explaining how to get it."""
    try:
        import rclpy
    except ImportError:
        raise UserError(ROS2_MISSING) from None
    return rclpy


class Ros2Arm(ModelArm):
    """An arm behind ros2_control. ``command_topic`` takes positions in spec joint order (rad)."""

    def __init__(self, spec: RobotSpec, base_position=(0.0, 0.0, 0.0),
                 command_topic: str = "/forward_position_controller/commands",
                 state_topic: str = "/joint_states", first_state_timeout_s: float = 5.0) -> None:
        self.rclpy = require_rclpy()
        self.spec, self.base_position = spec, tuple(base_position)
        self.command_topic, self.state_topic = command_topic, state_topic
        self.first_state_timeout_s = first_state_timeout_s
        self.model: KinematicModel | None = None
        self._lock = threading.Lock()
        self._latest: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
        self._node: Any = None
        self._executor: Any = None
        self._thread: threading.Thread | None = None

    def _on_joint_state(self, message: Any) -> None:
        index = {name: i for i, name in enumerate(message.name)}
        missing = [n for n in self.spec.joint_names if n not in index]
        if missing:
            return
        order = [index[n] for n in self.spec.joint_names]
        pick = lambda values: np.array([values[i] for i in order]) if len(values) else np.zeros(len(order))  # noqa: E731
        with self._lock:
            self._latest = (pick(message.position), pick(message.velocity), pick(message.effort), time.monotonic())

    def connect(self) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        if not self.rclpy.ok():
            self.rclpy.init()
        self.model = KinematicModel(self.spec, self.base_position)
        self._node = self.rclpy.create_node("sim2real_deploy")
        self._publisher = self._node.create_publisher(Float64MultiArray, self.command_topic, 10)
        self._message_type = Float64MultiArray
        self._node.create_subscription(JointState, self.state_topic, self._on_joint_state, 10)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.first_state_timeout_s
        while self._latest is None:
            if time.monotonic() > deadline:
                self.disconnect()
                raise UserError(f"no {self.state_topic} message naming joints {list(self.spec.joint_names)} "
                                f"within {self.first_state_timeout_s} s")
            time.sleep(0.01)

    def disconnect(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        if self._node is not None:
            self._node.destroy_node()
            self._node = None
        if self.model is not None:
            self.model.close()
            self.model = None

    def read_state(self) -> RobotState:
        """The latest joint_states message (its arrival time as timestamp)."""
        with self._lock:
            q, qd, tau, stamp = self._latest
        return self._make_state(q, qd, tau, stamp)

    def send_command(self, command: JointCommand) -> JointCommand:
        targets = np.clip(np.asarray(command.positions, dtype=float), self.spec.lower, self.spec.upper)
        self._publisher.publish(self._message_type(data=targets.tolist()))
        return JointCommand(targets)

