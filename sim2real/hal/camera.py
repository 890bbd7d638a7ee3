"""The ``Camera`` contract of the HAL and a real-camera backend (OpenCV: USB/V4L2 devices, files, streams).

A camera policy (vision pipeline, pixel policy) gets its image from a :class:`Camera` and its proprioception from
the :class:`~sim2real.hal.robot.Robot`, exactly as the simulator's camera env gives ``{"image", "proprio"}``.
"""
from __future__ import annotations

import abc
import time
from dataclasses import dataclass

import numpy as np

from sim2real.hal.device import Device


class CameraError(OSError):
    """The camera cannot deliver frames (not found, unplugged, stream ended); a deployment treats it as a lost link."""


@dataclass
class Frame:
    """One image: ``image`` (height, width, 3) uint8 RGB; ``timestamp`` s on the monotonic clock, when it was taken."""

    image: np.ndarray
    timestamp: float


class Camera(Device):
    """A camera behind the HAL: ``read_frame()`` returns the newest frame at the policy's resolution (pixels)."""

    width: int
    height: int

    @abc.abstractmethod
    def read_frame(self) -> Frame:
        """The latest frame, (height, width, 3) uint8 RGB; raises :class:`CameraError` when there is none."""

    def safe_stop(self) -> None:
        """A camera moves nothing: there is nothing to stop."""
        return None


class OpenCVCamera(Camera):
    """A camera read through OpenCV's ``VideoCapture``: a device index (``0`` = /dev/video0), a device path, a
    video file or a stream URL. Frames are resized (area interpolation) to ``width`` × ``height`` pixels and
    converted to RGB; the timestamp is when the frame was read (driver buffering adds latency on top).
    """

    def __init__(self, source: int | str, width: int = 84, height: int = 84) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"camera size must be positive, got {width}x{height}")
        self.source, self.width, self.height = source, int(width), int(height)
        self._capture = None

    def connect(self) -> None:
        import cv2

        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"camera {self.source!r}: cannot be opened")
        self._capture = capture

    def disconnect(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def read_frame(self) -> Frame:
        import cv2

        if self._capture is None:
            raise CameraError(f"camera {self.source!r}: not connected")
        ok, bgr = self._capture.read()
        stamp = time.monotonic()
        if not ok or bgr is None:
            raise CameraError(f"camera {self.source!r}: no frame (unplugged, or the stream ended)")
        small = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return Frame(np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)), stamp)


class CameraRig(Camera):
    """Several cameras as one: their frames (same height) side by side, left to right in the given order, as the
    multi-view camera envs join their views. The timestamp is the oldest frame's (the image is as old as its
    oldest part); one camera that fails fails the rig."""

    def __init__(self, cameras: list[Camera]) -> None:
        if not cameras or any(c.height != cameras[0].height for c in cameras):
            raise ValueError("a camera rig needs one or more cameras of the same height")
        self.cameras = list(cameras)
        self.width, self.height = sum(c.width for c in cameras), cameras[0].height

    def connect(self) -> None:
        connected: list[Camera] = []
        try:
            for camera in self.cameras:
                camera.connect()
                connected.append(camera)
        except Exception:
            for camera in connected:
                camera.disconnect()
            raise

    def disconnect(self) -> None:
        for camera in self.cameras:
            camera.disconnect()

    def read_frame(self) -> Frame:
        frames = [camera.read_frame() for camera in self.cameras]
        return Frame(np.concatenate([f.image for f in frames], axis=1), min(f.timestamp for f in frames))
