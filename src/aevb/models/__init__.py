"""Models: networks + distributions + prior, each built from a config dataclass.

``MODEL_CLASSES`` maps the name stored in a checkpoint's ``config.json`` to the class,
so loading needs no code from the run that wrote it.
"""

from aevb.models.sequence import SequenceVAE, SequenceVAEConfig
from aevb.models.vae import VAE, VAEConfig

MODEL_CLASSES = {"VAE": VAE, "SequenceVAE": SequenceVAE}

__all__ = ["MODEL_CLASSES", "SequenceVAE", "SequenceVAEConfig", "VAE", "VAEConfig"]
