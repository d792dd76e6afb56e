"""The wake-sleep algorithm (Hinton et al. 1995), the paper's main baseline.

Same model as AEVB: the encoder is the recognition model q(z|x), the decoder and prior the
generative model p(x|z) p(z). Each minibatch does both phases:

* wake: z ~ q(z|x) (not reparameterised), then raise log p(x|z) + log p(z) with respect
  to the generative parameters;
* sleep: a fantasy z ~ p(z), x ~ p(x|z) from the generative model, then raise
  log q(z|x) with respect to the recognition parameters.

Because the wake samples and the fantasies are detached, the wake term depends only on
the decoder and the sleep term only on the encoder: one loss, ``-(wake + sleep)``, gives
each set of parameters exactly its phase's gradient, so wake-sleep trains with the same
:class:`aevb.training.Trainer` as AEVB: it is an :class:`aevb.objectives.Objective`,
registered as ``TrainConfig.algorithm`` "wake-sleep". The metrics and the evaluations
report the ELBO, so the two algorithms are compared on the same bound (as in the paper's
Figure 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from aevb.distributions import Shard, standard_normal
from aevb.models.protocol import Model
from aevb.objectives import ELBOObjective, register, resolve_estimator


@register("wake-sleep", algorithm=True)
@dataclass(frozen=True)
class WakeSleepObjective:
    """``objective(model, x, generator, shard) -> (loss, metrics)`` for wake-sleep.

    ``n_samples`` is L, the wake samples per datapoint; the sleep phase draws as many
    fantasies as the minibatch has datapoints. Runs are evaluated by the ELBO with
    ``estimator`` and L samples.
    """

    n_samples: int = 1
    estimator: str = "B"
    bound_name = "elbo"

    @classmethod
    def from_config(cls, config) -> WakeSleepObjective:
        aevb_only = config.objective != "elbo" or config.beta != 1.0 or config.free_bits
        if aevb_only or config.kl_warmup_examples:
            raise ValueError(
                "TrainConfig.algorithm='wake-sleep': objective, beta, free_bits and "
                "kl_warmup_examples shape AEVB's bound; expected their defaults (elbo, 1, 0, 0)"
            )
        return cls(n_samples=config.n_samples, estimator=config.estimator)

    def check(self, model: Model) -> dict[str, Any]:
        if model.config.condition_dim or not model.config.analytic_kl:
            raise ValueError(
                "algorithm 'wake-sleep' supports the paper's model only: standard normal "
                "prior, one stochastic layer, no condition"
            )
        return {"estimator": resolve_estimator(model, self.estimator)}

    bound = ELBOObjective.bound  # evaluated by the ELBO, as AEVB is

    def __call__(
        self,
        model: Model,
        x: Tensor,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
        kl_weight: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        del kl_weight  # wake-sleep has no KL term to anneal
        q = model.posterior(x)
        # wake: the generative model learns from the recognition model's samples
        z = q.rsample(self.n_samples, generator=generator, shard=shard).detach()
        log_px_z = model.decode(z).log_prob(x)  # (L, B)
        wake = (log_px_z + model.prior.log_prob(z)).mean(0)
        # sleep: the recognition model learns to invert the generative model's fantasies
        z_dream = standard_normal(1, q.mean.detach(), generator=generator, shard=shard)[0]
        with torch.no_grad():
            x_dream = model.decode(z_dream).sample(1, generator=generator)[0]
        sleep = model.posterior(x_dream).log_prob(z_dream)  # (B,)
        loss = -(wake.mean() + sleep.mean())
        kl = model.kl_to_prior(q).detach()
        reconstruction = log_px_z.detach().mean(0)
        metrics = {"bound": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}
        return loss, metrics
