"""Train RL² on Bernoulli bandits and compare with baselines and the paper.

Usage: nice -n 10 python benchmarks/rl2_bandits.py --configs 10x5 [--steps N] [--eval-only] [--trials 1000]
Equivalent to ``sim2real bench rl2-bandits``; see BENCHMARKS.md (RL² section) for recorded results.
"""
import sys

from sim2real.commands.bench import main_rl2

if __name__ == "__main__":
    sys.exit(main_rl2("rl2-bandits", sys.argv[1:]))
