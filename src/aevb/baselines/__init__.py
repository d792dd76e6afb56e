"""The paper's comparisons: the wake-sleep algorithm and Monte Carlo EM."""

from aevb.baselines.wake_sleep import WakeSleepObjective

__all__ = ["WakeSleepObjective"]
