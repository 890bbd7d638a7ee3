"""Vision: a CNN trained on randomized renders to localize the task's goal, and the perception → state-policy
pipeline that runs a state policy from camera images."""
