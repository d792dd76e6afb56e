"""Property-guided design in the latent space (Gómez-Bombarelli et al. 2018, section
"Property prediction and optimisation").

1. Score a random sample of training molecules with RDKit (:data:`PROPERTIES`: QED, logP,
   or penalised logP = logP - synthetic accessibility - large-ring penalty, the form of
   Kusner et al. 2017 and Jin et al. 2018, without their normalisation).
2. Fit a small network from posterior means z to the score (the property predictor).
3. From the codes of the sample's best molecules, climb the predictor's gradient with a
   pull towards the prior (the objective is predictor(z) - ||z||^2 / 2, log p(z) up to a
   constant, so the codes stay where the decoder has seen data), decoding greedily every
   few steps.
4. Score every decoded proposal with RDKit: valid, novel (not a training molecule),
   above the training set's top 1% (estimated on the scored sample).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import QED, Crippen
from rdkit.Contrib.SA_Score import sascorer
from torch import nn

from aevb.atomic import write_text
from aevb.models import SequenceVAE
from aevb.molecules.chem import canonical, parse, quiet
from aevb.molecules.draw import draw_grid
from aevb.molecules.model import decode_codes, encode_smiles
from aevb.molecules.references import canonical_set


def penalized_logp(mol: Chem.Mol) -> float:
    """logP - SA score - max(0, largest ring size - 6): high for greasy, easily made
    molecules without large rings."""
    rings = [len(r) for r in mol.GetRingInfo().AtomRings()]
    cycle = max(0, max(rings, default=0) - 6)
    return Crippen.MolLogP(mol) - sascorer.calculateScore(mol) - cycle


PROPERTIES: dict[str, Callable[[Chem.Mol], float]] = {
    "qed": QED.qed,
    "logp": Crippen.MolLogP,
    "plogp": penalized_logp,
}
"""Scores by name, each of an RDKit molecule (higher = better)."""


def score(smiles: Sequence[str], prop: str) -> np.ndarray:
    """``prop`` of each molecule, NaN for an invalid one: ``(N,)`` float64."""
    fn = PROPERTIES[prop]
    out = np.full(len(smiles), np.nan)
    with quiet():
        for i, s in enumerate(smiles):
            mol = parse(s)
            if mol is not None:
                out[i] = fn(mol)
    return out


class Predictor(nn.Module):
    """z ``(N, Nz)`` -> predicted score ``(N,)``: a 2-layer MLP on standardised targets."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )  # fmt: skip
        self.register_buffer("shift", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)[:, 0] * self.scale + self.shift


def fit_predictor(
    z: np.ndarray, y: np.ndarray, *, epochs: int = 200, seed: int = 0
) -> tuple[Predictor, float]:
    """Fit :class:`Predictor` on 90% of (z, y) (full-batch Adam with weight decay) and
    return it with the R^2 on the other 10% (scikit-learn's ``r2_score``)."""
    from sklearn.metrics import r2_score

    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(z), generator=gen).numpy()
    cut = int(0.9 * len(z))
    fit, held = order[:cut], order[cut:]
    torch.manual_seed(seed)
    model = Predictor(z.shape[1])
    model.shift.fill_(float(y[fit].mean()))
    model.scale.fill_(float(y[fit].std() or 1.0))
    zt, yt = torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        for batch in torch.randperm(cut, generator=gen).split(512):
            rows = torch.as_tensor(fit)[batch]
            loss = ((model(zt[rows]) - yt[rows]) / model.scale).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        r2 = float(r2_score(y[held], model(zt[held]).numpy())) if len(held) > 1 else math.nan
    return model.eval(), r2


def ascend(
    predictor: Predictor, starts: np.ndarray, *, steps: int, lr: float = 0.05, every: int = 10
) -> list[np.ndarray]:
    """Gradient ascent on predictor(z) - ||z||^2 / 2 from ``starts`` ``(S, Nz)``; the codes
    ``(S, Nz)`` after every ``every`` steps (and at the end)."""
    z = torch.tensor(starts, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr)
    path = []
    for step in range(1, steps + 1):
        objective = predictor(z) - 0.5 * (z**2).sum(1)
        opt.zero_grad()
        (-objective.sum()).backward()
        opt.step()
        if step % every == 0 or step == steps:
            path.append(z.detach().numpy().copy())
    return path


@dataclass
class Design:
    """What :func:`run_optimization` found (``results.json``)."""

    property: str
    labelled: int
    predictor_r2: float
    top1_threshold: float
    """The 99th percentile of the property over the scored training sample."""
    training_best: float
    proposals: int
    """Distinct decoded strings."""
    valid: float
    novel: float
    """Share of the valid proposals that are not training molecules."""
    above_top1: int
    """Valid, novel proposals scoring above the training set's top 1%."""
    top: list[dict] = field(default_factory=list)
    """The three best valid novel proposals: SMILES, score, the molecule it started from."""
    seconds: float = 0.0


def run_optimization(
    model: SequenceVAE,
    training: Sequence[str],
    prop: str,
    *,
    labelled: int = 20_000,
    starts: int = 100,
    steps: int = 100,
    seed: int = 0,
    out: str | os.PathLike | None = None,
) -> Design:
    """The whole search (module docstring); with ``out``, writes ``results.json``,
    ``proposals.csv`` (every valid proposal with its score) and ``top.png``."""
    import time

    if prop not in PROPERTIES:
        raise ValueError(f"property {prop!r}: expected one of {sorted(PROPERTIES)}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(training))[: min(labelled, len(training))]
    sample = [training[i] for i in pick]
    y = score(sample, prop)
    ok = ~np.isnan(y)
    sample, y = [s for s, k in zip(sample, ok, strict=True) if k], y[ok]
    z = encode_smiles(model, sample)
    predictor, r2 = fit_predictor(z, y, seed=seed)
    threshold = float(np.quantile(y, 0.99))
    best = np.argsort(-y)[:starts]
    path = ascend(predictor, z[best], steps=steps)
    known = canonical_set(training)
    start_of: dict[str, str] = {}  # canonical proposal -> the molecule its ascent began at
    decoded_total: set[str] = set()
    for codes in path:
        for i, s in enumerate(decode_codes(model, codes)):
            decoded_total.add(s)
            c = canonical(s)
            if c is not None and c not in start_of:
                start_of[c] = sample[best[i]]
    valid = list(start_of)
    values = score(valid, prop)
    novel = [c for c in valid if c not in known]
    ranked = sorted(
        ((float(v), c) for c, v in zip(valid, values, strict=True) if c not in known),
        reverse=True,
    )
    design = Design(
        property=prop,
        labelled=len(sample),
        predictor_r2=r2,
        top1_threshold=threshold,
        training_best=float(y.max()),
        proposals=len(decoded_total),
        valid=len(valid) / max(1, len(decoded_total)),
        novel=len(novel) / max(1, len(valid)),
        above_top1=sum(v > threshold for v, _ in ranked),
        top=[{"smiles": c, "score": v, "start": start_of[c]} for v, c in ranked[:3]],
        seconds=time.perf_counter() - t0,
    )
    if out is not None:
        folder = Path(out)
        write_text(folder / "results.json", json.dumps(asdict(design), indent=1) + "\n")
        lines = ["SMILES,score,novel"] + [
            f"{c},{v:.4f},{int(c not in known)}" for c, v in zip(valid, values, strict=True)
        ]
        write_text(folder / "proposals.csv", "\n".join(lines) + "\n")
        if design.top:
            draw_grid(
                [t["smiles"] for t in design.top],
                folder / "top.png",
                legends=[f"{prop} {t['score']:.3f}" for t in design.top],
                per_row=3,
            )
    return design


def optimize_report(d: Design) -> str:
    """The design's summary, a few lines."""
    lines = [
        f"{d.property}: predictor R^2 {d.predictor_r2:.3f} on held-out codes "
        f"({d.labelled:,} scored training molecules)",
        f"training set: top 1% above {d.top1_threshold:.3f}, best {d.training_best:.3f}",
        f"{d.proposals:,} distinct proposals: {d.valid:.1%} valid, {d.novel:.1%} of those "
        f"novel; {d.above_top1} novel ones above the top 1%",
    ]
    lines += [f"  {t['score']:.3f}  {t['smiles']}" for t in d.top]
    return "\n".join(lines)
