"""Deployment: a trained policy + the task's own observation code + the safety layer + a hardware robot.

:mod:`sim2real.deploy.loop` is the rate loop every vehicle shares (timing, watchdog, e-stop, stop reasons, log);
:mod:`sim2real.deploy.arm` and :mod:`sim2real.deploy.multirotor` are the vehicles' episode runners. The stack around
them (driver, scene, camera, safety layer) is built by :func:`sim2real.deployment.build_stack`.
"""
