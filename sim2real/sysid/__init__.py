"""System identification from deployment logs (real-to-sim): replay logged commands through the simulator, fit its
parameters, write a reality profile and training ranges (``sim2real sysid``)."""
