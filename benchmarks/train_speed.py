"""Training and evaluation speed: aevb beside a plain DataLoader loop and the hardware floor.

    .venv/bin/python -m benchmarks.train_speed [--epochs 3] [--k 5000] [--is-images 100]

The reference model: MLP 784-400-20 encoder, 20-400-784 Bernoulli decoder, ReLU, Adam
(lr 1e-3), batch 128, the 50,000 binarized-MNIST training images. Printed side by side:

* aevb: its trainer (in-memory batches, fused Adam), seconds per epoch (median of the
  measured epochs after one warm-up epoch) and images/s;
* baseline: the loop most tutorials write (``DataLoader`` over a ``TensorDataset``, an
  ``nn.Module`` VAE, default Adam), same model, same maths;
* floor: the float32 GEMMs of one epoch plus the fused Adam steps, timed alone;
* importance-sampled log p(x) with k samples: images x samples per second against the
  decoder-GEMM floor, and peak memory.

Each measurement runs in its own process so that its peak memory (max RSS) is its own.
The same number of epochs of aevb and the baseline also give a test bound each, to show
the fast path learns what the plain path learns.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aevb.machine import cpu_model

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HIDDEN, LATENT, BATCH, LR = 400, 20, 128, 1e-3


# ---- the three training loops ------------------------------------------------------------


def _reference_vae():
    from aevb.models import VAE, VAEConfig

    return VAE(
        VAEConfig(
            input_dim=784,
            latent_dim=LATENT,
            hidden=(HIDDEN,),
            activation="relu",
            init="default",
            image_shape=(28, 28),
        )
    )


def _data(data_dir: str):
    from aevb.data import load_dataset

    return load_dataset("binarized_mnist", data_dir=data_dir)


def run_aevb(data_dir: str, epochs: int, seed: int) -> dict:
    """aevb's own trainer: warm-up epoch, then ``epochs`` timed epochs."""
    from aevb.evaluate import lower_bound
    from aevb.training import TrainConfig, Trainer

    data = _data(data_dir)
    torch.manual_seed(seed)
    model = _reference_vae()
    config = TrainConfig(optimizer="adam", lr=LR, batch_size=BATCH, seed=seed)
    trainer = Trainer(model, data, config, tempfile.mkdtemp(), quiet=True)
    n = len(data.train)
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        trainer.run(n)
        times.append(time.perf_counter() - start)
    model.eval()
    bound = (
        lower_bound(model, torch.as_tensor(data.test), generator=torch.Generator().manual_seed(0))
        .mean()
        .item()
    )
    return {"epoch_s": times[1:], "test_bound": bound}


class PlainVAE(nn.Module):
    """The tutorial VAE (pytorch/examples ``vae/main.py`` shape), logits decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, LATENT)
        self.fc22 = nn.Linear(HIDDEN, LATENT)
        self.fc3 = nn.Linear(LATENT, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def plain_loss(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kld) / x.shape[0]


def run_baseline(data_dir: str, epochs: int, seed: int) -> dict:
    """DataLoader + nn.Module + default Adam, as a typical user writes it."""
    from torch.utils.data import DataLoader, TensorDataset

    from aevb.evaluate import lower_bound

    data = _data(data_dir)
    torch.manual_seed(seed)
    model = PlainVAE()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(torch.as_tensor(data.train)), batch_size=BATCH, shuffle=True)
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for (x,) in loader:
            logits, mu, logvar = model(x)
            loss = plain_loss(logits, x, mu, logvar)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    vae = _reference_vae()  # same weights in aevb's VAE, so both are scored the same way
    with torch.no_grad():
        vae.encoder[0].load_state_dict(model.fc1.state_dict())
        vae.encoder_head.weight.copy_(torch.cat([model.fc21.weight, model.fc22.weight]))
        vae.encoder_head.bias.copy_(torch.cat([model.fc21.bias, model.fc22.bias]))
        vae.decoder[0].load_state_dict(model.fc3.state_dict())
        vae.decoder_head.load_state_dict(model.fc4.state_dict())
    bound = (
        lower_bound(
            vae.eval(), torch.as_tensor(data.test), generator=torch.Generator().manual_seed(0)
        )
        .mean()
        .item()
    )
    return {"epoch_s": times[1:], "test_bound": bound}


def _time_per_call(fn, reps: int = 300) -> float:
    for _ in range(20):
        fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def run_floor(n_train: int, epochs: int) -> dict:
    """One epoch of the model's float32 GEMMs (forward and backward) and fused Adam steps.

    Each GEMM shape is timed alone in a tight loop (the speed this machine's BLAS reaches
    on it), as is the fused Adam step; the floor is their sum times the steps per epoch.
    ``epochs`` repeats the measurement; the median is reported.
    """
    steps = math.ceil(n_train / BATCH)
    layers = [(784, HIDDEN), (HIDDEN, 2 * LATENT), (LATENT, HIDDEN), (HIDDEN, 784)]
    params = [nn.Parameter(torch.randn(o, i) * 0.01) for i, o in layers]
    params += [nn.Parameter(torch.zeros(o)) for _, o in layers]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = torch.optim.Adam(params, lr=LR, fused=True)
    torch.set_flush_denormal(True)
    times, flops = [], 0
    for _ in range(epochs):
        per_step, flops = _time_per_call(opt.step), 0
        for j, (i, o) in enumerate(layers):
            w, a = torch.randn(o, i), torch.rand(BATCH, i)
            g, out = torch.randn(BATCH, o), torch.empty(BATCH, o)
            gw, gi = torch.empty(o, i), torch.empty(BATCH, i)
            per_step += _time_per_call(lambda a=a, w=w, out=out: torch.mm(a, w.t(), out=out))
            per_step += _time_per_call(lambda g=g, a=a, gw=gw: torch.mm(g.t(), a, out=gw))
            flops += 4 * BATCH * i * o
            if j > 0:  # no gradient is needed for the data
                per_step += _time_per_call(lambda g=g, w=w, gi=gi: torch.mm(g, w, out=gi))
                flops += 2 * BATCH * i * o
        times.append(per_step * steps)
    return {"epoch_s": times, "gflop_per_epoch": flops * steps / 1e9}


def run_is(data_dir: str, k: int, n_images: int, seed: int) -> dict:
    """Importance-sampled log p(x) on the first test images, and the decoder-GEMM floor."""
    from aevb.evaluate import log_likelihood

    data = _data(data_dir)
    torch.manual_seed(seed)
    model = _reference_vae().eval()
    x = torch.as_tensor(data.test[:n_images])
    log_likelihood(model, x[:10], k=200)  # warm-up
    start = time.perf_counter()
    log_likelihood(model, x, k=k, generator=torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - start
    total = n_images * k
    floor = math.inf  # the decoder GEMMs of the same samples, best over chunk sizes
    for rows in (2048, 8192, 50_000):
        z, h = torch.randn(rows, LATENT), torch.empty(rows, HIDDEN)
        out = torch.empty(rows, 784)
        w3, w4 = torch.randn(HIDDEN, LATENT), torch.randn(784, HIDDEN)
        torch.mm(z, w3.t(), out=h)
        start = time.perf_counter()
        for _ in range(math.ceil(total / rows)):
            torch.mm(z, w3.t(), out=h)
            torch.mm(h, w4.t(), out=out)
        floor = min(floor, time.perf_counter() - start)
    return {"seconds": seconds, "samples": total, "floor_seconds": floor}


def _child(queue, threads, fn, args):
    torch.set_num_threads(threads)
    result = fn(*args)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def _measure(threads: int, fn, *args) -> dict:
    """Run ``fn(*args)`` in a fresh process; its result plus that process's peak RSS."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, threads, fn, args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    p.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up")
    p.add_argument("--k", type=int, default=5000, help="importance samples per image")
    p.add_argument("--is-images", type=int, default=100, help="test images for the IS timing")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t = args.threads

    print(
        f"machine: {cpu_model()}, {args.threads} threads, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}"
    )
    a = _measure(t, run_aevb, args.data_dir, args.epochs, args.seed)
    b = _measure(t, run_baseline, args.data_dir, args.epochs, args.seed)
    f = _measure(t, run_floor, 50_000, args.epochs)
    med = {
        name: statistics.median(r["epoch_s"])
        for name, r in (("aevb", a), ("baseline", b), ("floor", f))
    }
    print(
        f"\ntraining, reference model, {args.epochs} epochs timed after 1 warm-up (median s/epoch)"
    )
    print(f"{'':10}{'s/epoch':>10}{'images/s':>12}{'peak MiB':>10}{'test bound':>12}")
    for name, r in (("aevb", a), ("baseline", b), ("floor", f)):
        bound = f"{r['test_bound']:.2f}" if "test_bound" in r else "-"
        print(
            f"{name:10}{med[name]:>10.3f}{50_000 / med[name]:>12,.0f}"
            f"{r['peak_rss_mib']:>10.0f}{bound:>12}"
        )
    print(f"floor GEMM rate: {f['gflop_per_epoch'] / med['floor']:.0f} GFLOP/s")
    print(
        f"aevb / floor = {med['aevb'] / med['floor']:.2f}   "
        f"baseline / aevb = {med['baseline'] / med['aevb']:.2f}"
    )

    small = _measure(t, run_is, args.data_dir, max(1, args.k // 10), args.is_images, args.seed)
    s = _measure(t, run_is, args.data_dir, args.k, args.is_images, args.seed)
    rate = s["samples"] / s["seconds"]
    print(f"\nimportance sampling, k = {args.k}, {args.is_images} test images")
    print(
        f"aevb:  {rate:,.0f} image-samples/s; projected {10_000 * args.k / rate / 60:.1f} "
        f"min for the 10,000 test images"
    )
    print(
        f"floor: {s['samples'] / s['floor_seconds']:,.0f} image-samples/s (decoder GEMMs); "
        f"aevb / floor = {s['seconds'] / s['floor_seconds']:.2f}"
    )
    print(
        f"peak memory: {s['peak_rss_mib']:.0f} MiB at k = {args.k}, "
        f"{small['peak_rss_mib']:.0f} MiB at k = {max(1, args.k // 10)}"
    )


if __name__ == "__main__":
    main()
