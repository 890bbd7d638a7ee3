"""Gymnasium randomization wrappers, one concern each, composable in any order."""
from randomizers.wrappers.actuation import ActuationRandomizer
from randomizers.wrappers.base import RandomizationWrapper, randomizers_in
from randomizers.wrappers.dynamics import DynamicsRandomizer
from randomizers.wrappers.sensing import SensingRandomizer
from randomizers.wrappers.visual import VisualRandomizer

WRAPPERS: dict[str, type[RandomizationWrapper]] = {
    w.GROUP: w for w in (DynamicsRandomizer, ActuationRandomizer, SensingRandomizer, VisualRandomizer)
}

__all__ = ["ActuationRandomizer", "DynamicsRandomizer", "RandomizationWrapper", "SensingRandomizer",
           "VisualRandomizer", "WRAPPERS", "randomizers_in"]
