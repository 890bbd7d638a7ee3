"""Deployment: a trained policy + the task's own observation code + the safety layer + a hardware robot."""
