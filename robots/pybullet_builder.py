"""Load a :class:`RobotSpec` into a PyBullet client and map its joint names to body indices."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pybullet as p
import pybullet_data

from robots.spec import RobotSpec

PACKAGE_URDF_DIR = os.path.join(os.path.dirname(__file__), "urdf")


def urdf_path(spec: RobotSpec) -> str:
    """Absolute path of the spec's URDF (pybullet_data is resolved at run time, never copied)."""
    root = pybullet_data.getDataPath() if spec.urdf_source == "pybullet_data" else PACKAGE_URDF_DIR
    return os.path.join(root, spec.urdf)


@dataclass(frozen=True)
class LoadedRobot:
    """A robot body in one PyBullet client: ``joint_indices`` follow ``spec.joints`` order."""

    client: int
    body: int
    joint_indices: tuple[int, ...]
    ee_link: int
    movable_indices: tuple[int, ...]  # all non-fixed joints, in body order (PyBullet's IK output order)

    @property
    def ik_columns(self) -> np.ndarray:
        """Position of each spec joint inside PyBullet's IK solution vector."""
        return np.array([self.movable_indices.index(i) for i in self.joint_indices])


def load_robot(client: int, spec: RobotSpec, base_position=(0.0, 0.0, 0.0), base_orientation=(0, 0, 0, 1)) -> LoadedRobot:
    """Load the URDF with a fixed base, put it in ``spec.home`` and resolve every named joint and the EE link."""
    body = p.loadURDF(
        urdf_path(spec), base_position, base_orientation, useFixedBase=True,
        flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client,
    )
    by_joint: dict[str, int] = {}
    by_link: dict[str, int] = {}
    movable: list[int] = []
    for j in range(p.getNumJoints(body, physicsClientId=client)):
        info = p.getJointInfo(body, j, physicsClientId=client)
        by_joint[info[1].decode()] = j
        by_link[info[12].decode()] = j
        if info[2] != p.JOINT_FIXED:
            movable.append(j)
    missing = [n for n in spec.joint_names if n not in by_joint]
    if missing or spec.end_effector.link not in by_link:
        raise ValueError(f"{spec.urdf}: URDF lacks joints {missing} or link {spec.end_effector.link!r}")
    indices = tuple(by_joint[n] for n in spec.joint_names)
    if sorted(indices) != movable:
        raise ValueError(f"{spec.urdf}: the spec must list every movable joint (URDF has {len(movable)})")
    for index, q in zip(indices, spec.home):
        p.resetJointState(body, index, q, 0.0, physicsClientId=client)
    return LoadedRobot(client, body, indices, by_link[spec.end_effector.link], tuple(movable))
