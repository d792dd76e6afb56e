"""The `aevb` command end to end on real data from ../shared/data, and its error paths."""

import argparse
import dataclasses
import json

import pytest

from aevb.cli import build_parser, main
from aevb.config import to_dict, with_defaults
from aevb.models import VAEConfig
from aevb.options import given_options
from aevb.runfolder import RunFolder


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(
        [
            "train",
            "--data",
            "binarized_mnist",
            "--hidden",
            "64",
            "--latent-dim",
            "4",
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
            "--max-examples",
            "3000",
            "--eval-every",
            "1000",
            "--eval-max-examples",
            "300",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_train_writes_run_folder_pictures_and_metrics(mnist_run, capsys):
    for name in (
        "samples.png",
        "reconstructions.png",
        "manifold.png",
        "interpolation.png",
        "training_curve.png",
        "metrics.csv",
        "best/model.safetensors",
        "checkpoint/trainer.json",
    ):
        assert (mnist_run / name).is_file(), name
    rows = (mnist_run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4  # header + evaluations at 1000, 2000, 3000 samples
    bounds = [float(r.split(",")[2]) for r in rows[1:]]
    assert bounds[-1] > bounds[0] and -550 < bounds[-1] < -150  # MNIST: learning, plausible


def test_evaluate_reports_bound_log_likelihood_and_diagnostics(mnist_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(
        ["evaluate", str(mnist_run), "-k", "50", "--max-examples", "100", "--json", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["data"] == "binarized_mnist" and result["examples"] == 100
    lb, ll = result["lower_bound"], result["log_likelihood"]
    assert ll["k"] == 50 and ll["stderr"] > 0
    assert ll["mean"] > lb["mean"] - 3 * lb["stderr"]  # IS tightens the bound
    assert 0 <= result["active_units"] <= 4 and len(result["kl_per_dim"]) == 4


def test_pictures_info_and_resume(mnist_run, tmp_path, capsys):
    assert (
        main(
            [
                "sample",
                str(mnist_run),
                "-n",
                "16",
                "--out",
                str(tmp_path / "s.png"),
                "--npy",
                str(tmp_path / "s.npy"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "manifold",
                str(mnist_run),
                "-n",
                "5",
                "--dims",
                "1",
                "3",
                "--out",
                str(tmp_path / "m.png"),
            ]
        )
        == 0
    )
    assert main(["reconstruct", str(mnist_run), "-n", "4", "--out", str(tmp_path / "r.png")]) == 0
    assert (
        main(["interpolate", str(mnist_run), "--steps", "5", "--out", str(tmp_path / "i.png")]) == 0
    )
    assert main(["curve", str(mnist_run), "--out", str(tmp_path / "c.png")]) == 0
    assert (
        main(
            [
                "traverse",
                str(mnist_run),
                "--dims",
                "0",
                "2",
                "-n",
                "5",
                "--out",
                str(tmp_path / "t.png"),
            ]
        )
        == 0
    )
    for f in ("s.png", "s.npy", "m.png", "r.png", "i.png", "c.png", "t.png"):
        assert (tmp_path / f).stat().st_size > 0
    capsys.readouterr()
    assert main(["info", str(mnist_run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["data"] == "binarized_mnist" and info["training_examples"] == 3000
    assert info["config"]["latent_dim"] == 4
    assert (
        main(
            [
                "train",
                "--out",
                str(mnist_run),
                "--resume",
                "--max-examples",
                "4000",
                "--quiet",
                "--no-pictures",
            ]
        )
        == 0
    )
    assert len((mnist_run / "metrics.csv").read_text().splitlines()) == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--data", "no/such/file.npy"],
            "--data no/such/file.npy: no such file or folder",
        ),
        (["evaluate", "no/such/run"], "no/such/run: no such file or folder"),
        (["train", "--data", "digits", "--lr", "-1"], "--lr: expected a number > 0, got '-1'"),
        (
            ["train", "--data", "digits", "--weight-decay", "lots"],
            "--weight-decay: expected a number >= 0 or 'prior', got 'lots'",
        ),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(argv)
    except SystemExit as e:  # options are checked while the command line is parsed
        status = e.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aevb") and ": error: " in err and message in err and "\n" not in err


def test_existing_run_is_not_overwritten_by_accident(mnist_run, capsys):
    assert main(["train", "--data", "binarized_mnist", "--out", str(mnist_run)]) == 2
    assert "already holds a training run" in capsys.readouterr().err


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_every_option_of_every_command_has_a_sentence_of_help():
    """Introspects the parser: an option added without help (or with a word or two) fails."""
    commands = _subparsers(build_parser())
    assert {"train", "evaluate", "sample", "reproduce", "info", "anomaly"} <= set(commands)
    for name, sub in list(commands.items()):  # nested commands: aevb anomaly fit, ...
        commands.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    assert "anomaly fit" in commands
    lacking = []
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            words = (action.help or "").split()
            if action.help == argparse.SUPPRESS or len(words) < 3:
                lacking.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not lacking, f"options without a sentence of help: {lacking}"


def test_every_help_page_states_each_default_at_most_once_and_never_as_none():
    """``(default: cpu) (default: cpu)`` or ``(default: None)`` on a help page fails."""
    commands = _subparsers(build_parser())
    for name, sub in list(commands.items()):
        commands.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    bad, checked = [], 0
    for name, sub in commands.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.help in (None, argparse.SUPPRESS):
                continue
            said = formatter._expand_help(action)  # the text --help prints for the option
            checked += 1
            if said.count("(default:") > 1 or "(default: None)" in said:
                bad.append(f"{name} {action.option_strings[0]}: {said}")
    assert checked > 100 and not bad, bad


def test_evaluate_warns_about_posterior_collapse(tmp_path, capsys):
    import torch

    from aevb.io import save_model
    from aevb.models import VAE, VAEConfig

    model = VAE(VAEConfig(input_dim=64, latent_dim=4, hidden=(), init="default"))
    with torch.no_grad():  # an encoder that ignores its input: every dimension collapsed
        model.encoder_head.weight.zero_()
    save_model(model, tmp_path / "collapsed")
    out = tmp_path / "e.json"
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "collapsed"),
                "--data",
                "digits",
                "-k",
                "0",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "only 0 of 4 latent dimensions are active" in err and "--kl-warmup" in err
    result = json.loads(out.read_text())
    assert result["active_units"] == 0 and abs(result["mutual_information"]) < 0.1


def test_every_config_field_is_an_option_of_train_or_set_by_the_command():
    """A new hyper-parameter is one line in aevb.options (its range): the option's name,
    default and help come from the field, and the command passes it on by name."""
    from aevb.models import VAEConfig
    from aevb.options import model_flags, train_flags
    from aevb.training import TrainConfig

    train = _subparsers(build_parser())["train"]
    dests = {a.dest: a for a in train._actions}
    # set from the data, or (min_logvar) a numerical floor the command line leaves alone
    from_data = {"input_dim", "condition_dim", "image_shape", "min_logvar"}
    for config, flags in ((VAEConfig, model_flags()), (TrainConfig, train_flags(sequences=True))):
        for field in dataclasses.fields(config):
            assert field.name in flags or field.name in from_data, field.name
    assert "bucket_pool" not in dests  # image and table models have no lengths
    assert dests["n_samples"].option_strings == ["--samples"]
    # renamed options keep their former spelling, named in the help
    assert dests["max_examples"].option_strings == ["--max-examples", "--max-samples"]
    assert "--max-samples" in dests["max_examples"].help
    assert dests["prior"].choices == ["standard", "mog", "vamp"]
    assert dests["hidden"].default == [500] and dests["hidden"].nargs == "*"
    # a flag has its opposite (a resumed run may turn compilation off), both noted as given
    args = train.parse_args(["--compile", "--no-compile"])
    assert args.compile is False and given_options(args) == {"compile": "--no-compile"}
    assert train.parse_args(["--compile"]).compile is True
    assert train.parse_args([]).compile is False


def test_the_help_of_every_generated_option_is_its_fields_docstring():
    """The help of each option of train generated from a config field starts with the first
    paragraph of the field's docstring, and every such field has one: the two cannot drift."""
    from aevb.config import field_docs, field_summary
    from aevb.models import VAEConfig
    from aevb.options import model_flags, train_flags
    from aevb.training import TrainConfig

    actions = _subparsers(build_parser())["train"]._actions
    dests = {a.dest: a for a in actions if not a.option_strings[0].startswith("--no-")}
    for config, flags in ((VAEConfig, model_flags()), (TrainConfig, train_flags())):
        docs = field_docs(config)
        for name in flags:
            assert not docs[name].startswith(f"{config.__name__}.{name}, of type"), name
            summary = field_summary(config, name)
            assert summary == " ".join(docs[name].split("\n\n")[0].split()), name
            assert dests[name].help.replace("%%", "%").startswith(summary), name
    assert dests["latent_dim"].help == "Latent dimension Nz."  # nothing added where not needed
    assert "Default here: the dataset's suggestion" in dests["likelihood"].help  # a CLI note
    assert "trainer.json" not in dests["estimator"].help  # only the first paragraph


def test_field_docs_fall_back_to_name_and_type_without_source():
    """A class whose source cannot be read (e.g. a zipped install) still gets help text."""
    from aevb.config import field_docs, field_summary

    Made = dataclasses.make_dataclass("Made", [("width", int), ("shape", "tuple[int, ...]")])
    assert field_docs(Made) == {
        "width": "Made.width, of type int",
        "shape": "Made.shape, of type tuple[int, ...]",
    }
    assert field_summary(Made, "width") == "Made.width, of type int"


def test_resume_refuses_settings_other_than_the_runs(tmp_path, capsys):
    """A resumed run keeps its settings: an option given with --resume that differs from
    the run's is refused in one line naming both values; the run's own values (the whole
    command line again, plus --resume) and "auto" are accepted."""
    out = str(tmp_path / "run")
    first = ["train", "--data", "digits", "--hidden", "16", "8", "--latent-dim", "2"]
    first += ["--lr", "0.01", "--kl-warmup", "1ep", "--max-examples", "300", "--out", out]
    assert main([*first, "--quiet", "--no-pictures"]) == 0
    capsys.readouterr()
    again = [*first, "--resume", "--max-examples", "600", "--estimator", "auto", "--quiet"]
    assert main([*again, "--no-pictures"]) == 0
    capsys.readouterr()
    changed = ["--lr", "0.5", "--hidden", "16", "--precision", "bf16", "--samples", "2"]
    assert main([*again, "--max-examples", "900", *changed, "--patience", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("aevb: error: --resume keeps the run's settings, and these differ:")
    assert "--lr 0.5 (the run's: 0.01)" in err and "--hidden 16 (the run's: 16 8)" in err
    assert "--precision bf16 (the run's: fp32)" in err and "--samples 2 (the run's: 1)" in err
    assert "--kl-warmup" not in err  # 1ep is the run's warm-up, in examples
    assert "--patience" not in err  # how the run is watched may change
    meta = json.loads(open(f"{out}/checkpoint/trainer.json").read())
    assert meta["state"]["history"][-1]["examples"] == 600  # nothing was trained
    # when it is evaluated and stopped early may change, and the run records it
    watched = ["--eval-every", "100", "--patience", "4", "--nonfinite", "skip"]
    assert main([*again, "--max-examples", "700", *watched, "--no-pictures"]) == 0
    meta = json.loads(open(f"{out}/checkpoint/trainer.json").read())
    assert [meta["train_config"][k] for k in ("eval_every", "patience", "nonfinite")] == [
        100,
        4,
        "skip",
    ]
    assert meta["train_config"]["lr"] == 0.01
    assert meta["state"]["history"][-1]["examples"] == 700


def test_resume_checks_fields_an_older_run_did_not_write(tmp_path, capsys):
    """A run written before a setting existed has it at its default: options given with
    --resume are checked against that, not skipped."""
    out = tmp_path / "run"
    first = ["train", "--data", "digits", "--hidden", "16", "--latent-dim", "2"]
    first += ["--max-examples", "300", "--out", str(out), "--quiet", "--no-pictures"]
    assert main(first) == 0
    path = out / "checkpoint" / "trainer.json"  # as a version before --precision wrote it
    stored = json.loads(path.read_text())
    del stored["train_config"]["precision"]
    path.write_text(json.dumps(stored))
    capsys.readouterr()
    again = [*first, "--resume", "--max-examples", "600"]
    assert main([*again, "--precision", "bf16"]) == 2
    assert "--precision bf16 (the run's: fp32)" in capsys.readouterr().err
    assert main([*again, "--precision", "fp32"]) == 0
    # the model's config likewise (as an older version wrote it, without a field)
    for folder in ("best", "checkpoint"):
        path = out / folder / "config.json"
        stored = json.loads(path.read_text())
        del stored["config"]["activation"]
        path.write_text(json.dumps(stored))
    vae = RunFolder(out).model_config()
    assert vae["activation"] == "tanh" and vae["hidden"] == [16]
    assert with_defaults(VAEConfig, {"input_dim": 4}) == {**to_dict(VAEConfig(4)), "input_dim": 4}
