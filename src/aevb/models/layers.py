"""Deprecated: :class:`GaussianLayer` moved to :mod:`aevb.models.hierarchy`, ``clamp_logvar``
to :mod:`aevb.distributions`."""

from aevb.deprecation import moved

__getattr__ = moved(
    __name__,
    {
        "GaussianLayer": "aevb.models.hierarchy.GaussianLayer",
        "clamp_logvar": "aevb.distributions.clamp_logvar",
    },
)
