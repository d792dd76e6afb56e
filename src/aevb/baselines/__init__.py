"""The paper's comparisons: the wake-sleep algorithm and Monte Carlo EM (with HMC from
:mod:`aevb.hmc`)."""

from aevb.baselines.mcem import MCEM, MCEMConfig, fit_mcem
from aevb.baselines.wake_sleep import WakeSleepObjective

__all__ = ["MCEM", "MCEMConfig", "WakeSleepObjective", "fit_mcem"]
