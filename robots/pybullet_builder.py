"""Load a :class:`RobotSpec` into a PyBullet client and map its joint names to body indices."""
from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
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


def urdf_with_com_offset(path: str, offset: tuple[float, float, float]) -> str:
    """The URDF text at ``path`` with every link's centre of mass (``<inertial><origin xyz>``) moved by ``offset``
    (m, each link's frame) and relative mesh paths made absolute, so the text loads from any directory."""
    tree = ET.parse(path)
    root_dir = os.path.dirname(os.path.abspath(path))
    for inertial in tree.getroot().iter("inertial"):
        origin = inertial.find("origin")
        if origin is None:
            origin = ET.SubElement(inertial, "origin")
        xyz = [float(x) for x in (origin.get("xyz") or "0 0 0").split()]
        origin.set("xyz", " ".join(repr(a + b) for a, b in zip(xyz, offset)))
    for mesh in tree.getroot().iter("mesh"):
        name = mesh.get("filename", "")
        relative = name[len("package://"):] if name.startswith("package://") else name
        if relative and not os.path.isabs(relative):
            mesh.set("filename", os.path.join(root_dir, relative))
    return ET.tostring(tree.getroot(), encoding="unicode")


def _load_urdf(client: int, path: str, base_position, base_orientation, com_offset) -> int:
    kwargs = dict(useFixedBase=True, flags=p.URDF_USE_INERTIA_FROM_FILE | p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
                  physicsClientId=client)
    if not any(com_offset):
        return p.loadURDF(path, base_position, base_orientation, **kwargs)
    # PyBullet cannot move a link's centre of mass in place: load a rewritten copy of the URDF instead.
    with tempfile.NamedTemporaryFile("w", suffix=".urdf", encoding="utf-8") as copy:
        copy.write(urdf_with_com_offset(path, com_offset))
        copy.flush()
        return p.loadURDF(copy.name, base_position, base_orientation, **kwargs)


def load_robot(client: int, spec: RobotSpec, base_position=(0.0, 0.0, 0.0), base_orientation=(0, 0, 0, 1),
               com_offset=(0.0, 0.0, 0.0)) -> LoadedRobot:
    """Load the URDF with a fixed base, put it in ``spec.home`` and resolve every named joint and the EE link.

    ``com_offset`` (m) moves every link's centre of mass along its own frame's axes (domain randomization)."""
    body = _load_urdf(client, urdf_path(spec), base_position, base_orientation, tuple(map(float, com_offset)))
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
