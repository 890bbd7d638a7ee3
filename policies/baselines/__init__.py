"""Classical baselines for the RL² bandit and tabular-MDP benchmarks."""
