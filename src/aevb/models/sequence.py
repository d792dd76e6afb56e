"""A VAE over token sequences (SMILES, SELFIES, any text): Bowman et al. (2016, "Generating
Sentences from a Continuous Space"), as used for molecules by Gómez-Bombarelli et al.
(2018) and the MOSES VAE (Polykovskiy et al. 2020).

The parts are the image model's, with sequence networks in place of the MLPs:

* q(z|x): token embeddings, two GRUs (or LSTMs) reading each row forwards and backwards
  (or a small transformer) and a linear head giving the diagonal Gaussian, exactly as
  :class:`aevb.models.VAE`'s;
* p(z) = N(0, I), with the closed-form KL, so every objective (ELBO estimators A and B,
  beta, free bits, KL warm-up, IWAE) and the importance-sampled log-likelihood apply;
* p(x|z) = prod_t Cat(x_t | x_<t, z): a GRU (or LSTM) decoder that reads z at every step
  and starts from a state computed from z (:class:`TokenSequence`). Scoring uses teacher
  forcing (the true previous token is the input); ``word_dropout`` replaces a share of
  those inputs by ``<pad>`` during training, so the decoder has to rely on z (Bowman et
  al.'s remedy for posterior collapse).

**Rows are floats.** A sequence is a row of D token ids ``<bos> t_1 ... t_n <eos> <pad>...``
(:class:`aevb.molecules.Vocabulary` writes them), stored as float32 like every other data
row, so the trainer, run folder, checkpoints and evaluation take it unchanged. Ids are
whole numbers below 2^24, so float32 holds them exactly. The positions after ``<eos>`` are
determined by it, so log p(x|z) sums over the tokens up to and including ``<eos>``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aevb.config import check_choice, check_positive
from aevb.distributions import DiagonalGaussian, StandardNormal, clamp_logvar, no_rsample
from aevb.inputs import check_rows
from aevb.models.protocol import Encoded

PAD, BOS, EOS = 0, 1, 2
"""The ids of the special tokens every vocabulary starts with."""
ENCODERS = ("gru", "lstm", "transformer")
DECODERS = ("gru", "lstm")
RECURRENT = {"gru": nn.GRU, "lstm": nn.LSTM}
"""The recurrent networks by name. On CPUs with bf16 units an LSTM trains faster than a
GRU under ``precision="bf16"`` (docs/molecules.md)."""


@dataclasses.dataclass(frozen=True)
class SequenceVAEConfig:
    """Every hyper-parameter of :class:`SequenceVAE`; ``config.json`` of a checkpoint holds it."""

    input_dim: int
    """Positions per row D: the longest sequence plus <bos> and <eos>."""
    tokens: tuple[str, ...]
    """The vocabulary, index = token id: <pad>, <bos>, <eos>, then the corpus' tokens."""
    tokenizer: str = "smiles"
    """How text was cut into the tokens: "smiles", "chars" or "selfies"."""
    latent_dim: int = 64
    """Latent dimension Nz."""
    embedding_dim: int = 64
    """Width of the token embeddings (shared by the encoder and decoder)."""
    encoder: str = "gru"
    """The encoder: "gru" or "lstm" (one network reading forwards, one backwards) or
    "transformer" (a small one, mean-pooled)."""
    encoder_hidden: int = 256
    """Encoder width: each direction's state, or the transformer's model width."""
    encoder_layers: int = 1
    """Encoder depth (recurrent or transformer layers)."""
    decoder: str = "gru"
    """The decoder's recurrent network: "gru" or "lstm" (whose cell state starts at 0)."""
    decoder_hidden: int = 512
    """Width of the decoder's state."""
    decoder_layers: int = 1
    """Depth of the decoder."""
    word_dropout: float = 0.0
    """Share of the decoder's teacher-forced input tokens replaced by <pad> in training."""
    latent_logvar_range: tuple[float, float] | None = None
    """Clamp the encoder's log-variance to [LOW, HIGH]; none by default."""

    likelihood = "categorical"
    """p(x|z): an autoregressive categorical over the tokens (not a field: fixed)."""
    condition_dim = 0
    upper_latents = ()
    image_shape = None
    gaussian_mean = None
    analytic_kl = True

    def __post_init__(self) -> None:
        name = "SequenceVAEConfig"
        for field in ("input_dim", "latent_dim", "embedding_dim", "encoder_hidden"):
            check_positive(name, field, getattr(self, field))
        for field in ("encoder_layers", "decoder_hidden", "decoder_layers"):
            check_positive(name, field, getattr(self, field))
        check_choice(name, "encoder", self.encoder, ENCODERS)
        check_choice(name, "decoder", self.decoder, DECODERS)
        if self.input_dim < 2:
            raise ValueError(f"{name}.input_dim={self.input_dim}: expected 2 or more (<bos> <eos>)")
        if len(self.tokens) < 4 or tuple(self.tokens[:3]) != ("<pad>", "<bos>", "<eos>"):
            raise ValueError(
                f"{name}.tokens: expected <pad>, <bos>, <eos> and at least one token, got "
                f"{list(self.tokens[:4])}..."
            )
        if not 0.0 <= self.word_dropout < 1.0:
            raise ValueError(f"{name}.word_dropout={self.word_dropout}: expected [0, 1)")
        if self.encoder == "transformer" and self.encoder_hidden % 4:
            raise ValueError(
                f"{name}.encoder_hidden={self.encoder_hidden}: a transformer encoder (4 heads) "
                "needs a multiple of 4"
            )

    @property
    def vocab_size(self) -> int:
        """V, the number of tokens."""
        return len(self.tokens)

    @property
    def code_dim(self) -> int:
        return self.latent_dim


def sequence_lengths(ids: Tensor) -> Tensor:
    """Tokens per row up to and including the first <eos> (D when a row has none):
    ``(N, D)`` long -> ``(N,)`` long."""
    is_eos = ids == EOS
    first = is_eos.int().argmax(1)
    return torch.where(is_eos.any(1), first + 1, torch.full_like(first, ids.shape[1]))


def never_emitted(logits: Tensor) -> Tensor:
    """``logits`` ``(..., V)`` with <pad> and <bos> at -inf: the decoder's categorical is
    over <eos> and the corpus' tokens (a row's positions after <eos> are not scored)."""
    return logits.index_fill(-1, torch.tensor([PAD, BOS], device=logits.device), -torch.inf)


class TokenSequence:
    """p(x|z) = prod_t Cat(x_t | x_<t, z) for codes ``z`` ``(*batch, Nz)``; event: a row of D
    token ids. Draws are not differentiable (:meth:`rsample` refuses)."""

    def __init__(self, model: SequenceVAE, z: Tensor) -> None:
        self.model, self.z = model, z

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x|z) for rows ``(*batch, D)`` (or ``(B, D)`` against z ``(S, B, Nz)``):
        ``(*batch)``, summed over the tokens up to and including each row's <eos>."""
        batch = self.z.shape[:-1]
        ids = x.long().expand(*batch, x.shape[-1]).reshape(-1, x.shape[-1])
        return self.model.decoder_log_prob(self.z.reshape(-1, self.z.shape[-1]), ids).reshape(batch)

    @property
    def mean(self) -> Tensor:
        """The greedy decoding (the most likely token at each step), standing in for the
        mean, which token ids do not have: ``(*batch, D)`` float ids."""
        return self._generate(greedy=True, generator=None)

    def sample(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` sequences drawn token by token: ``(n, *batch, D)`` float ids."""
        z = self.z.expand(n, *self.z.shape)
        return TokenSequence(self.model, z)._generate(greedy=False, generator=generator)

    def rsample(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        raise no_rsample("a token sequence")

    def _generate(self, *, greedy: bool, generator: torch.Generator | None) -> Tensor:
        batch = self.z.shape[:-1]
        ids = self.model.generate(self.z.reshape(-1, self.z.shape[-1]), greedy, generator)
        return ids.reshape(*batch, -1).to(self.z.dtype)


class SequenceVAE(nn.Module):
    """x -> q(z|x) -> z -> p(x|z) over token sequences (see the module docstring).

    Shapes: a row ``x`` is ``(B, D)`` float token ids; z is ``(..., Nz)``.
    """

    config_class = SequenceVAEConfig

    def __init__(self, config: SequenceVAEConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=None)
        if c.encoder in RECURRENT:  # [forwards, backwards]: see :meth:`read_both_ways`
            rnn = RECURRENT[c.encoder]
            self.encoder = nn.ModuleList(
                rnn(c.embedding_dim, c.encoder_hidden, c.encoder_layers, batch_first=True)
                for _ in range(2)
            )
            features = 2 * c.encoder_hidden
        else:
            self.encoder_in = nn.Linear(c.embedding_dim, c.encoder_hidden)
            self.positions = nn.Parameter(torch.zeros(c.input_dim, c.encoder_hidden))
            nn.init.normal_(self.positions, std=0.02)
            layer = nn.TransformerEncoderLayer(
                c.encoder_hidden, 4, 2 * c.encoder_hidden, dropout=0.0, batch_first=True
            )
            self.encoder = nn.TransformerEncoder(
                layer, c.encoder_layers, enable_nested_tensor=False
            )
            features = c.encoder_hidden
        self.encoder_head = nn.Linear(features, 2 * c.latent_dim)
        self.decoder_start = nn.Linear(c.latent_dim, c.decoder_layers * c.decoder_hidden)
        self.decoder = RECURRENT[c.decoder](
            c.embedding_dim + c.latent_dim, c.decoder_hidden, c.decoder_layers, batch_first=True
        )
        self.decoder_head = nn.Linear(c.decoder_hidden, c.vocab_size)
        self.prior = StandardNormal(c.latent_dim)

    # -- q(z|x) ----------------------------------------------------------------------------

    def encode(self, x: Tensor | np.ndarray) -> DiagonalGaussian:
        """q(z|x) for rows ``(B, D)`` of token ids (any array; checked: whole numbers in
        [0, V)): batch shape ``(B,)``, ``latent_dim`` wide."""
        return self.posterior(self.check_ids(x))

    def check_ids(self, x: Tensor | np.ndarray, name: str = "x") -> Tensor:
        """Rows ``(B, D)`` as float ids on the model's device, after checking that each value
        is a token id of the vocabulary; a ``ValueError`` names what was expected."""
        x = check_rows(self, x, name=name, device=next(self.parameters()).device)
        bad = (x < 0) | (x >= self.config.vocab_size) | (x != torch.round(x))
        if bad.any():
            row, col = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"{name}[{row}, {col}] = {float(x[row, col]):g}: expected token ids, whole "
                f"numbers in [0, {self.config.vocab_size})"
            )
        return x

    def example_lengths(self, x: Tensor) -> Tensor:
        """Tokens per row ``(N,)`` long of ids ``x`` ``(N, D)`` (already checked, e.g. by
        the trainer's data validation), up to and including <eos>: a minibatch runs as
        long as its longest row (the trainer's ``bucket_pool`` groups rows by it)."""
        return sequence_lengths(x)

    def posterior(self, x: Tensor) -> DiagonalGaussian:
        """:meth:`encode` without its checks (minibatches the trainer already checked)."""
        return self.encoded(x).q

    def encoded(self, x: Tensor) -> Encoded:
        """:meth:`posterior` with the encoder's output ``(B, F)``."""
        self.separate_condition(x)
        ids = x.long()
        lengths = sequence_lengths(ids)
        ids = ids[:, : int(lengths.max())]
        if self.config.encoder in RECURRENT:
            features = self.read_both_ways(ids, lengths)
        else:
            t = ids.shape[1]
            h = self.encoder_in(self.embedding(ids)) + self.positions[:t]
            pad = torch.arange(t, device=ids.device)[None] >= lengths[:, None]
            h = self.encoder(h, src_key_padding_mask=pad)
            keep = (~pad).unsqueeze(-1).to(h.dtype)
            features = (h * keep).sum(1) / keep.sum(1)
        mean, logvar = self.encoder_head(features).chunk(2, dim=-1)
        q = DiagonalGaussian(mean, clamp_logvar(logvar, self.config.latent_logvar_range))
        return Encoded(q, features)

    def read_both_ways(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """The recurrent encoder's features ``(B, 2H)`` for ids ``(B, T)`` long with
        ``lengths`` ``(B,)``: the forward network's output after each row's last token,
        beside the backward one's after its first (it reads the row reversed within its
        length).

        The same as a packed bidirectional network, without packing: PyTorch's CPU backward
        of a packed sequence fills a zero gradient of the whole input for every time step,
        which cost two thirds of a training step.
        """
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        last = (lengths - 1)[:, None]  # (B, 1)
        reversed_ids = ids.gather(1, torch.where(pos <= last, last - pos, pos))
        ends = last[:, :, None].expand(-1, 1, self.config.encoder_hidden)
        reads = [
            rnn(self.embedding(rows))[0].gather(1, ends)[:, 0]
            for rnn, rows in zip(self.encoder, (ids, reversed_ids), strict=True)
        ]
        return torch.cat(reads, dim=-1)

    # -- p(x|z) ----------------------------------------------------------------------------

    def decode(self, z: Tensor, condition: Tensor | None = None) -> TokenSequence:
        """p(x|z) for codes ``(..., Nz)``: batch shape ``(...)``, event a row of D ids."""
        self.as_condition(condition, 0)
        return TokenSequence(self, z)

    def decode_layers(
        self, layers: Sequence[Tensor], condition: Tensor | None = None
    ) -> TokenSequence:
        """:meth:`decode` of the one layer ``[z]``."""
        return self.decode(layers[0], condition)

    def _start(self, z: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """The decoder's initial state from z ``(N, Nz)``: ``(layers, N, H)``; for an LSTM
        with its cell state, zeros of the same shape."""
        c = self.config
        h = torch.tanh(self.decoder_start(z))
        h = h.reshape(-1, c.decoder_layers, c.decoder_hidden).transpose(0, 1).contiguous()
        return (h, torch.zeros_like(h)) if c.decoder == "lstm" else h

    def decoder_log_prob(self, z: Tensor, ids: Tensor) -> Tensor:
        """log p(x|z) by teacher forcing, for z ``(N, Nz)`` and rows ``(N, D)`` long: ``(N,)``."""
        lengths = sequence_lengths(ids)
        t = int(lengths.max()) - 1  # targets: positions 1 .. the last row's <eos>
        inputs, targets = ids[:, :t], ids[:, 1 : t + 1]
        if self.training and self.config.word_dropout > 0:  # keep <bos>, drop the others
            drop = torch.rand(inputs.shape, device=ids.device) < self.config.word_dropout
            drop[:, 0] = False
            inputs = inputs.masked_fill(drop, PAD)
        steps = torch.cat([self.embedding(inputs), z[:, None].expand(-1, t, -1)], dim=-1)
        out, _ = self.decoder(steps, self._start(z))
        logits = never_emitted(self.decoder_head(out))  # (N, t, V)
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        scored = torch.arange(t, device=ids.device)[None] < (lengths - 1)[:, None]
        return -torch.where(scored, nll, 0.0).sum(1)

    @torch.no_grad()
    def generate(
        self,
        z: Tensor,
        greedy: bool = True,
        generator: torch.Generator | None = None,
        *,
        token_temperature: float = 1.0,
    ) -> Tensor:
        """Decode z ``(N, Nz)`` token by token: ``(N, D)`` long ids, <bos> first, <pad> after
        <eos>. ``greedy`` takes the most likely token, else draws it from the categorical
        that :meth:`decoder_log_prob` scores (<pad> and <bos> excluded), its logits divided
        by ``token_temperature`` (below 1: likelier tokens, fewer invalid strings, less
        diversity; 1 draws from p(x|z) itself)."""
        if not (token_temperature > 0 and math.isfinite(token_temperature)):
            raise ValueError(f"token_temperature={token_temperature}: expected a finite T > 0")
        n, d = z.shape[0], self.config.input_dim
        ids = torch.full((n, d), PAD, dtype=torch.long, device=z.device)
        ids[:, 0] = BOS
        h, token = self._start(z), ids[:, 0]
        done = torch.zeros(n, dtype=torch.bool, device=z.device)
        for t in range(1, d):
            step = torch.cat([self.embedding(token), z], dim=-1)[:, None]
            out, h = self.decoder(step, h)
            logits = never_emitted(self.decoder_head(out[:, 0]).float())
            if greedy:
                token = logits.argmax(-1)
            else:
                top = logits.amax(-1, keepdim=True)  # 0 after the shift: no overflow
                probs = ((logits - top) / token_temperature).softmax(-1)
                token = torch.multinomial(probs, 1, generator=generator)[:, 0]
            token = token.masked_fill(done, PAD)
            ids[:, t] = token
            done |= token == EOS
            if done.all():
                break
        return ids

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        condition: Tensor | Sequence[int] | None = None,
        greedy: bool = False,
        token_temperature: float = 1.0,
    ) -> Tensor:
        """``n`` sequences from z ~ p(z) (its standard deviation scaled by ``temperature``):
        ``(n, D)`` float ids, each token drawn (its logits divided by
        ``token_temperature``) or the most likely one (``greedy``)."""
        self.as_condition(condition, n)
        p = next(self.parameters())
        z = self.prior.sample(
            n, generator=generator, device=p.device, temperature=temperature, dtype=p.dtype
        )
        ids = self.generate(z, greedy, generator, token_temperature=token_temperature)
        return ids.to(p.dtype)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Greedy decoding at the posterior means: ``(B, D)`` float ids for rows ``(B, D)``."""
        x = self.check_ids(x)
        return self.generate(self.posterior(x).mean, True).to(x.dtype)

    # -- what the objectives, evaluation and baselines read -------------------------------

    def log_prior(self, z: Tensor, upper: Sequence[Tensor] = ()) -> Tensor:
        """log p(z) = log N(z; 0, I): ``(...)``."""
        return self.prior.log_prob(z)

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x, z) for rows ``(B, D)`` and z ``(..., B, Nz)``: ``(..., B)``."""
        return self.decode(z).log_prob(x) + self.prior.log_prob(z)

    def infer_layers(
        self,
        x: Tensor,
        z: Tensor,
        *,
        generator: torch.Generator | None = None,
        shard: object = None,
        sample: bool = True,
        features: Tensor | None = None,
    ) -> tuple[list[Tensor], float]:
        """One layer: ``([z], 0.0)``."""
        return [z], 0.0

    def kl_to_prior(self, q: DiagonalGaussian) -> Tensor:
        """KL(q(z|x) || N(0, I)) in closed form, ``(B,)``."""
        return q.kl_standard_normal()

    def kl_to_prior_per_dim(self, q: DiagonalGaussian) -> Tensor:
        """KL per dimension in closed form, ``(B, Nz)``."""
        return q.kl_standard_normal_per_dim()

    def generative_parameters(self) -> list[nn.Parameter]:
        """The decoder's parameters (the embeddings are shared with the encoder and
        counted here), in :meth:`parameters` order."""
        inference = [self.encoder, self.encoder_head]
        if self.config.encoder == "transformer":
            inference += [self.encoder_in]
        skip = {id(p) for m in inference for p in m.parameters()}
        if self.config.encoder == "transformer":
            skip.add(id(self.positions))
        return [p for p in self.parameters() if id(p) not in skip]

    def separate_condition(self, x: Tensor) -> tuple[Tensor, None]:
        """Rows ``(..., D)`` and no condition (a sequence model has none)."""
        if x.shape[-1] != self.config.input_dim:
            raise ValueError(
                f"data rows have {x.shape[-1]} values: expected {self.config.input_dim} "
                "token positions"
            )
        return x, None

    def as_condition(self, condition: Tensor | Sequence[int] | None, n: int) -> None:
        """None: a sequence model takes no condition (one given is an error)."""
        if condition is not None:
            raise ValueError("this model is not conditional: expected no condition")
        return None
