"""Keep policy tests on one thread: the CI machine has two shared cores."""
import torch

torch.set_num_threads(1)
