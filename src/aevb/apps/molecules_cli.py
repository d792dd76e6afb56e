"""``aevb molecules train | sample | metrics | reconstruct | interpolate | optimize``: the
molecule VAE from the command line, through the functions of :mod:`aevb.molecules`.

* ``train [DATA] --out RUN``: a sequence VAE on MOSES (default) or a SMILES file; every
  training option of ``aevb train`` applies, plus the sequence model's own; ``--resume``.
* ``sample RUN -n 30000 --out gen.csv``: draws from the prior (a CSV with a ``SMILES``
  column, invalid strings included).
* ``metrics GEN.csv``: the MOSES table (Markdown) and ``--json``.
* ``reconstruct RUN [DATA]``: how many test molecules come back from their posterior mean.
* ``interpolate RUN A B --out grid.png``: molecules along the line between two codes.
* ``optimize RUN --property qed``: latent-space search for molecules with a higher score.

The options are added without importing RDKit, so ``aevb --help`` works without the
``molecules`` extra; the commands say in one line how to install it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import time
from pathlib import Path
from typing import Any

from aevb.argtypes import Number, count, positive
from aevb.atomic import write_text

DEFAULT_DATA = "moses"
RUN_SPEC = "molecules.json"
"""How a run's data was made (data, tokenizer, sizes, seed): ``--resume`` rebuilds it."""
PROPERTIES = ("qed", "logp", "plogp")
EVAL_MAX_EXAMPLES = 10_000
"""``aevb molecules train``'s default ``--eval-max-examples``: each evaluation reads at
most this many molecules of each split (the whole MOSES training split would take an
hour on a CPU)."""


def _extra() -> None:
    try:
        import aevb.molecules  # noqa: F401
    except ImportError as e:
        raise RuntimeError(str(e)) from None


def add_options(sub: Any) -> None:
    """``aevb molecules`` and its commands."""
    from aevb.models.sequence import DECODERS, ENCODERS, SequenceVAEConfig
    from aevb.options import (
        DefaultsHelpFormatter,
        Flag,
        StoreGiven,
        add_config_flags,
        add_model_path,
        add_threads,
        train_flags,
    )
    from aevb.training import TrainConfig

    m = sub.add_parser(
        "molecules",
        help="molecule design: train a SMILES/SELFIES VAE, sample, MOSES metrics, optimise",
        description="The molecule VAE (SMILES or SELFIES, MOSES by default): train a model, "
        "sample molecules, score them with the MOSES metrics, reconstruct, interpolate, "
        "optimise properties in the latent space.",
    )
    cmds = m.add_subparsers(
        dest="molecules_command",
        required=True,
        metavar="ACTION",
        help="train a model, sample from it, score samples, reconstruct, interpolate, optimise",
    )
    fmt = DefaultsHelpFormatter

    t = cmds.add_parser("train", help="train a sequence VAE on molecules", formatter_class=fmt)
    t.add_argument(
        "data",
        nargs="?",
        default=None,
        metavar="DATA",
        help=f"'moses' (its training split) or a SMILES file (.smi/.txt/.csv[.gz]); default "
        f"{DEFAULT_DATA}, with --resume the run's",
    )
    t.add_argument("--out", required=True, help="the run folder to write (or --resume)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (its data, model and settings are kept: other "
        "values are refused; the budget, the --lr-schedule options, --eval-every, "
        "--eval-per-decade, --checkpoint-every, --patience, --nonfinite, --compile and "
        "--device may change)",
    )
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument(
        "--tokenizer", choices=("smiles", "chars", "selfies"), default="smiles", action=StoreGiven,
        help="how molecules become tokens: regex-atom SMILES, characters or SELFIES",
    )  # fmt: skip
    t.add_argument(
        "--train-size", type=count(1, 10**9), default=None, action=StoreGiven,
        help="train on this many molecules drawn at random (default: all but the held-out)",
    )  # fmt: skip
    t.add_argument(
        "--valid-size", type=count(0, 10**9), default=10_000, action=StoreGiven,
        help="molecules held out at random to evaluate the bound and pick best/",
    )  # fmt: skip
    t.add_argument(
        "--column", default=None, action=StoreGiven, help="the SMILES column of a CSV file"
    )
    t.add_argument(
        "--skip-invalid", action=StoreGiven, nargs=0, const=True, default=False,
        help="skip unparsable molecules of DATA (counted in a warning) instead of failing",
    )  # fmt: skip
    g = t.add_argument_group("model")
    size = count(1, 1 << 16)
    add_config_flags(
        g,
        SequenceVAEConfig,
        {
            "latent_dim": Flag(size),
            "embedding_dim": Flag(size),
            "encoder": Flag(choices=ENCODERS),
            "encoder_hidden": Flag(size),
            "encoder_layers": Flag(count(1, 64)),
            "decoder": Flag(choices=DECODERS),
            "decoder_hidden": Flag(size),
            "decoder_layers": Flag(count(1, 64)),
            "word_dropout": Flag(Number(float, 0.0, 0.99)),
        },
    )
    g = t.add_argument_group("training")
    add_config_flags(g, TrainConfig, train_flags(sequences=True))
    # Adam at 1e-3 with clipping as the MOSES VAE, not the paper's Adagrad: Adagrad's
    # shrinking steps barely train a GRU (docs/molecules.md, "Training defaults")
    t.set_defaults(optimizer="adam", lr=1e-3, clip_grad_norm=50.0)
    add_threads(g)
    g.add_argument("--quiet", action="store_true", help="no progress bar or 30 s lines")
    t.set_defaults(handler=train_command)

    s = cmds.add_parser("sample", help="molecules drawn from the prior", formatter_class=fmt)
    add_model_path(s)
    s.add_argument("-n", type=count(1, 10**8), default=30_000, help="how many (MOSES: 30,000)")
    s.add_argument("--out", required=True, help="CSV to write (one column, SMILES)")
    s.add_argument(
        "--temperature", type=positive(100.0), default=1.0,
        help="scales the prior's standard deviation",
    )  # fmt: skip
    s.add_argument(
        "--token-temperature", type=positive(100.0), default=1.0,
        help="divides the decoder's logits before each token is drawn (the MOSES models' "
        "temp; below 1: more valid, less diverse)",
    )  # fmt: skip
    s.add_argument(
        "--greedy", action="store_true",
        help="take the most likely token at each step instead of drawing it",
    )  # fmt: skip
    s.add_argument("--seed", type=count(0, 2**63 - 1), default=0, help="seed of the draws")
    s.add_argument("--batch-size", type=count(1, 10**6), default=1000, help="molecules a batch")
    s.set_defaults(handler=sample_command)

    q = cmds.add_parser(
        "metrics", help="the MOSES metrics of generated SMILES", formatter_class=fmt
    )
    q.add_argument("generated", metavar="GEN", help="generated SMILES (.csv/.smi/.txt[.gz])")
    q.add_argument(
        "--json", default=None,
        help="where to write the table as JSON (default: beside GEN, GEN's name with "
        "the suffix .metrics.json)",
    )  # fmt: skip
    q.add_argument(
        "--data-dir", default=None,
        help="where the MOSES files are (default: $AEVB_DATA_DIR or the cache dir)",
    )  # fmt: skip
    q.add_argument(
        "--test", default=None,
        help="reference molecules instead of the MOSES test set (a SMILES file)",
    )  # fmt: skip
    q.add_argument(
        "--test-scaffolds", default=None,
        help="with --test: the scaffold test set (a SMILES file; none: no /TestSF columns)",
    )  # fmt: skip
    q.add_argument(
        "--train", default=None,
        help="with --test: the training molecules, for Novelty (a SMILES file)",
    )  # fmt: skip
    q.add_argument("--no-fcd", action="store_true", help="skip FCD (ChemNet: the slow part)")
    q.add_argument("--column", default=None, help="GEN's SMILES column, if a CSV file")
    q.add_argument(
        "--skip-invalid", action="store_true",
        help="skip unparsable molecules of the --test, --test-scaffolds and --train files "
        "(counted in a warning) instead of stopping",
    )  # fmt: skip
    q.add_argument("--device", default=None, help="ChemNet's device (default: cuda if any)")
    add_threads(q)
    q.set_defaults(handler=metrics_command)

    r = cmds.add_parser(
        "reconstruct",
        help="share of test molecules decoded back from their posterior mean",
        formatter_class=fmt,
    )
    add_model_path(r)
    r.add_argument(
        "data", nargs="?", default=DEFAULT_DATA, metavar="DATA",
        help="'moses' (its test split) or a SMILES file",
    )  # fmt: skip
    add_file_options(r)
    r.add_argument("-n", type=count(1, 10**8), default=1000, help="molecules, drawn at random")
    r.add_argument("--seed", type=count(0, 2**63 - 1), default=0, help="seed of the draw")
    r.set_defaults(handler=reconstruct_command)

    i = cmds.add_parser(
        "interpolate", help="molecules between two molecules' codes", formatter_class=fmt
    )
    add_model_path(i)
    i.add_argument("start", help="the first molecule (SMILES)")
    i.add_argument("end", help="the last molecule (SMILES)")
    i.add_argument("--steps", type=count(2, 1000), default=8, help="points on the line")
    i.add_argument("--out", required=True, help="PNG grid of the molecules")
    i.set_defaults(handler=interpolate_command)

    o = cmds.add_parser(
        "optimize",
        help="latent-space search for molecules with a better property score",
        formatter_class=fmt,
    )
    add_model_path(o)
    o.add_argument("--property", choices=PROPERTIES, default="qed", help="the score to raise")
    o.add_argument(
        "--data", default=DEFAULT_DATA, help="training molecules: 'moses' or a SMILES file"
    )
    add_file_options(o)
    o.add_argument(
        "--labelled", type=count(100, 10**7), default=20_000,
        help="training molecules scored with RDKit to fit the latent predictor",
    )  # fmt: skip
    o.add_argument("--starts", type=count(1, 10**5), default=100, help="ascent starting points")
    o.add_argument("--steps", type=count(1, 10**5), default=100, help="gradient steps each")
    o.add_argument(
        "--seed", type=count(0, 2**63 - 1), default=0, help="seed of the sample and the fit"
    )
    o.add_argument("--out", required=True, help="folder for results.json, top.png, proposals.csv")
    o.set_defaults(handler=optimize_command)


def add_file_options(p: argparse.ArgumentParser) -> None:
    """``--column`` and ``--skip-invalid`` of a command that reads a SMILES file."""
    p.add_argument("--column", default=None, help="the SMILES column of a CSV file")
    p.add_argument(
        "--skip-invalid", action="store_true",
        help="skip unparsable molecules of the file (counted in a warning) instead of stopping",
    )  # fmt: skip


# ---- train ------------------------------------------------------------------------------


def _corpus(data: str, column: str | None, skip_invalid: bool, split: str = "train") -> list[str]:
    """The molecules of ``data``: a MOSES split, or every molecule of a SMILES file."""
    from aevb.molecules import load_moses, read_smiles

    if data == DEFAULT_DATA:
        return load_moses(splits=(split,)).split(split)
    return read_smiles(data, column=column, skip_invalid=skip_invalid).smiles


def _dataset(spec: dict) -> tuple[Any, Any]:
    """The Dataset and Vocabulary a run's spec describes (the same for a resume)."""
    from aevb.molecules import Vocabulary
    from aevb.molecules.model import hold_out, sequence_dataset

    smiles = _corpus(spec["data"], spec["column"], spec["skip_invalid"])
    train, valid = hold_out(smiles, spec["valid_size"], spec["train_size"], spec["seed"])
    vocab = (
        Vocabulary.from_dict(spec["vocabulary"])
        if "vocabulary" in spec
        else Vocabulary.build([*train, *valid], spec["tokenizer"])
    )
    name = Path(spec["data"]).name
    return sequence_dataset(f"{name}-{spec['tokenizer']}", vocab, train, valid), vocab


def train_command(args: argparse.Namespace) -> str:
    """``aevb molecules train``: a new run (or ``--resume``), then a summary."""
    _extra()
    from aevb.commands import check_resume_settings, resume_changes, train_config
    from aevb.models import SequenceVAEConfig
    from aevb.molecules.model import new_model, train_molecules
    from aevb.run import writer_lock
    from aevb.runfolder import RunFolder
    from aevb.training import seed_everything

    out = Path(args.out)
    spec_path = out / RUN_SPEC
    with writer_lock(out):
        if args.resume:
            if not spec_path.is_file():
                raise ValueError(f"--resume: {out} holds no molecule run ({RUN_SPEC} missing)")
            spec = json.loads(spec_path.read_text())
            if args.data not in (None, spec["data"]):
                raise ValueError(f"--resume: the run trains on {spec['data']!r}, not {args.data!r}")
            # checked before the data is loaded (MOSES takes a while); how the run's data
            # was made (molecules.json) is one of its settings
            run = RunFolder(out)
            n_train = run.train_size()
            if n_train is not None:
                check_resume_settings(args, run, n_train, also=spec)
            data, _ = _dataset(spec)
            if n_train is None:
                check_resume_settings(args, run, len(data.train), also=spec)
            start = time.perf_counter()
            result = train_molecules(
                out,
                data,
                epochs=args.epochs,
                max_examples=args.max_examples,
                quiet=args.quiet,
                changes=resume_changes(args, len(data.train)),
            )
        else:
            if spec_path.exists() and not args.overwrite:
                raise ValueError(f"--out {out}: holds a run; --resume it or pass --overwrite")
            spec = {
                "data": args.data or DEFAULT_DATA,
                "tokenizer": args.tokenizer,
                "train_size": args.train_size,
                "valid_size": args.valid_size,
                "seed": args.seed,
                "column": args.column,
                "skip_invalid": args.skip_invalid,
            }
            data, vocab = _dataset(spec)
            print(
                f"data: {len(data.train):,} training and "
                f"{0 if data.valid is None else len(data.valid):,} held-out molecules of "
                f"{spec['data']}; {len(vocab)} {vocab.kind} tokens, length {vocab.max_length}",
                flush=True,
            )
            n_train = len(data.train)
            if args.eval_max_examples is None:  # not the whole 1.6M-molecule training split
                args.eval_max_examples = EVAL_MAX_EXAMPLES
            names = {f.name for f in dataclasses.fields(SequenceVAEConfig)}
            model_fields = {k: v for k, v in vars(args).items() if k in names and k != "tokenizer"}
            config = train_config(args, n_train)

            def start_run():
                seed_everything(args.seed)
                return new_model(vocab, **model_fields), config

            out.mkdir(parents=True, exist_ok=True)
            write_text(spec_path, json.dumps({**spec, "vocabulary": vocab.to_dict()}) + "\n")
            start = time.perf_counter()
            result = train_molecules(
                out,
                data,
                start_run,
                if_exists="overwrite" if args.overwrite else "error",
                quiet=args.quiet,
            )
    last = result.history[-1]
    parts = [f"{k[:-6]} {v:.2f}" for k, v in last.items() if k.endswith("_bound")]
    lines = [
        f"run folder: {out}",
        f"lower bound (nats per molecule): {', '.join(parts)}",
        f"KL {last.get('kl', float('nan')):.2f} nats; {last.get('active_units', 0):.0f} active "
        "units",
        f"{result.images_per_second:,.0f} training molecules/s; "
        f"wall {time.perf_counter() - start:.0f} s",
    ]
    return "\n".join(lines)


# ---- sample, metrics --------------------------------------------------------------------


def _load(args: argparse.Namespace):
    _extra()
    from aevb.molecules.model import load_molecule_model

    return load_molecule_model(args.model, device=args.device)


def write_smiles_csv(path: str | Path, smiles: list[str]) -> Path:
    """A one-column CSV (header ``SMILES``, as MOSES writes its files), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["SMILES"])
    w.writerows([s] for s in smiles)
    return write_text(path, buf.getvalue())


def sample_command(args: argparse.Namespace) -> str:
    """``aevb molecules sample``."""
    from aevb.molecules import fraction_valid
    from aevb.molecules.model import sample_smiles

    model = _load(args)
    start = time.perf_counter()
    smiles = sample_smiles(
        model,
        args.n,
        temperature=args.temperature,
        greedy=args.greedy,
        seed=args.seed,
        batch_size=args.batch_size,
        token_temperature=args.token_temperature,
    )
    seconds = time.perf_counter() - start
    write_smiles_csv(args.out, smiles)
    return (
        f"wrote {len(smiles):,} molecules to {args.out} ({len(smiles) / seconds:,.0f} "
        f"molecules/s); valid {fraction_valid(smiles):.3f}"
    )


def metrics_table(table: dict[str, float]) -> str:
    """The metrics as a two-column Markdown table."""
    rows = ["| metric | value |", "| --- | --- |"]
    rows += [f"| {k} | {v:.4f} |" for k, v in table.items()]
    return "\n".join(rows)


def metrics_command(args: argparse.Namespace) -> str:
    """``aevb molecules metrics``."""
    _extra()
    from aevb.molecules import References, moses_metrics, moses_references, read_smiles

    generated = read_smiles(args.generated, column=args.column, check=False).smiles
    if args.test is None:
        if args.test_scaffolds or args.train:
            raise ValueError("--test-scaffolds and --train go with --test (own references)")
        references = moses_references(
            args.data_dir, chemnet=not args.no_fcd, quiet=False, device=args.device
        )
    else:
        own = {
            name: None if path is None else read_smiles(path, skip_invalid=args.skip_invalid).smiles
            for name, path in (
                ("test", args.test),
                ("test_scaffolds", args.test_scaffolds),
                ("train", args.train),
            )
        }
        references = References.from_smiles(
            **own, chemnet=not args.no_fcd, device=args.device, quiet=False
        )
    table = moses_metrics(
        generated, references, chemnet=not args.no_fcd, device=args.device, quiet=False
    )
    out = Path(args.json) if args.json else metrics_json_path(args.generated)
    record = {"generated": str(args.generated), "n": len(generated), "metrics": table}
    write_text(out, json.dumps(record, indent=1) + "\n")
    return f"{metrics_table(table)}\nJSON: {out}"


def metrics_json_path(generated: str | Path) -> Path:
    """Where ``aevb molecules metrics GEN`` writes its JSON by default: beside GEN, its
    name without the file type (and .gz) plus ``.metrics.json``."""
    path = Path(generated)
    stem = Path(path.name.removesuffix(".gz")).stem
    return path.with_name(f"{stem}.metrics.json")


# ---- reconstruct, interpolate -----------------------------------------------------------


def reconstruct_command(args: argparse.Namespace) -> str:
    """``aevb molecules reconstruct``."""
    import numpy as np

    from aevb.molecules.model import reconstruction_accuracy

    model = _load(args)
    smiles = _corpus(args.data, args.column, args.skip_invalid, split="test")
    pick = np.random.default_rng(args.seed).permutation(len(smiles))[: args.n]
    found = reconstruction_accuracy(model, [smiles[i] for i in pick])
    return (
        f"{found.n:,} molecules of {args.data}: reconstruction accuracy {found.accuracy:.3f} "
        f"(same canonical SMILES), valid decodings {found.valid:.3f}"
    )


def interpolate_command(args: argparse.Namespace) -> str:
    """``aevb molecules interpolate``."""
    from aevb.molecules.draw import draw_grid
    from aevb.molecules.model import interpolate

    model = _load(args)
    path = interpolate(model, args.start, args.end, args.steps)
    draw_grid(path, args.out, legends=[f"t = {t / (len(path) - 1):.2f}" for t in range(len(path))])
    return "\n".join([*(f"{t}: {s}" for t, s in enumerate(path)), f"picture: {args.out}"])


# ---- optimize ---------------------------------------------------------------------------


def optimize_command(args: argparse.Namespace) -> str:
    """``aevb molecules optimize``."""
    from aevb.molecules.design import optimize_report, run_optimization

    model = _load(args)
    smiles = _corpus(args.data, args.column, args.skip_invalid)
    found = run_optimization(
        model,
        smiles,
        args.property,
        labelled=args.labelled,
        starts=args.starts,
        steps=args.steps,
        seed=args.seed,
        out=args.out,
    )
    return optimize_report(found)
