"""Torch-vectorized meta-RL benchmark environments (Duan et al. 2016): Bernoulli bandits, tabular MDPs."""
from policies.envs.bandits import BernoulliBanditVecEnv
from policies.envs.tabular_mdp import TabularMDPVecEnv

__all__ = ["BernoulliBanditVecEnv", "TabularMDPVecEnv"]
