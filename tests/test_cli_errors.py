"""Every error the `aevb` command shows is one line, with no traceback.

The sweep enumerates every command and every numeric option of :func:`build_parser` (no
hand-written list): each kind of bad value (zero where not allowed, negative, huge,
non-numbers) must exit with status 2 and one line naming the option.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import shutil
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import SafetensorError

from aevb import commands, memory
from aevb.argtypes import Named, Number
from aevb.atomic import WriteError, atomic_dir, atomic_path, write_text
from aevb.cli import _name_flags, build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


COMMANDS = _subparsers(build_parser())
NUMERIC = [
    (name, action)
    for name, p in COMMANDS.items()
    for action in p._actions
    if isinstance(action.type, Number | Named)
]


def _number(action: argparse.Action) -> Number:
    """The range of a numeric option (of the N in ``NAME=N`` for a named one)."""
    return action.type.number if isinstance(action.type, Named) else action.type


def _values(action: argparse.Action, value: str) -> list[str]:
    """``value`` as many times as the option takes values."""
    return [value] * (action.nargs if isinstance(action.nargs, int) else 1)


def _positionals(command: str, run: str) -> list[str]:
    """Valid positional arguments of ``command``: a choice, or the run folder."""
    return [
        a.choices[0] if a.choices else run
        for a in COMMANDS[command]._actions
        if not a.option_strings and a.nargs != 0
    ]


def _bad_values(kind: Number) -> list[str]:
    """Values outside ``kind``'s range, of every kind: zero, negative, huge, not a number."""
    values = ["abc", "", "1,5", "nan", "inf", "-inf", "1e309", str(10**30), "1e300"]
    if kind.kind is int:
        values += ["1.5", "0x10"]
    if kind.low > 0 or (kind.low == 0 and kind.low_open):
        values.append("0")
    if kind.low >= 0:
        values += ["-1", "-3", "-0.5"]
    else:
        values.append(f"{kind.low * 10:g}")
    values.append(f"{kind.high * 10:g}" if kind.kind is float else str(int(kind.high) + 1))
    return values


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of ``aevb argv``, run in this process."""
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


def assert_one_line(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("aevb") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> str:
    """A run folder of a few hundred training examples on the bundled digits."""
    out = tmp_path_factory.mktemp("errors") / "run"
    argv = ["train", "--data", "digits", "--hidden", "16", "--latent-dim", "2", "--out", str(out)]
    argv += ["--max-examples", "300", "--eval-every", "300", "--quiet", "--no-pictures"]
    assert main(argv) == 0
    return str(out)


def test_every_numeric_option_declares_its_range():
    untyped = [
        (name, a.option_strings)
        for name, p in COMMANDS.items()
        for a in p._actions
        if a.type in (int, float)
    ]
    assert not untyped
    assert len(NUMERIC) > 40 and {name for name, _ in NUMERIC} >= {"train", "evaluate", "sample"}


@pytest.mark.parametrize(
    "command, action", NUMERIC, ids=[f"{c}{a.option_strings[-1]}" for c, a in NUMERIC]
)
def test_bad_numeric_values_are_refused_in_one_line(command, action, capsys):
    option = action.option_strings[-1]
    for value in _bad_values(_number(action)):
        argv = [command, *_positionals(command, "some/run"), option, *_values(action, value)]
        status, err = run_cli(argv, capsys)
        assert status == 2, (argv, err)
        assert_one_line(err, f"aevb {command}: error: ")


@pytest.mark.parametrize(
    "command, action", NUMERIC, ids=[f"{c}{a.option_strings[-1]}" for c, a in NUMERIC]
)
def test_the_ends_of_every_range_are_accepted(command, action):
    kind, option = _number(action), action.option_strings[-1]
    ends = [kind.high] if kind.low_open else [kind.low, kind.high]
    for end in ends:
        text = str(int(end)) if kind.kind is int else repr(float(end))
        argv = [command, *_positionals(command, "run"), option, *_values(action, text)]
        value = getattr(build_parser().parse_args(argv), action.dest)
        end = text if isinstance(action.type, Named) else end
        assert value == (_values(action, end) if action.nargs else end)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "run", "-k", "-5"], "-k/--k: expected an integer >= 0, got '-5'"),
        (["evaluate", "run", "--max-examples", "-5"], "--max-examples: expected an integer >= 1"),
        (["evaluate", "run", "--max-examples", "0"], "--max-examples: expected an integer >= 1"),
        (["evaluate", "run", "--batch-size", "0"], "--batch-size: expected an integer >= 1"),
        (["evaluate", "run", "--batch-size", "-3"], "--batch-size: expected an integer >= 1"),
        (["train", "--threads", "-1"], "--threads: expected an integer >= 1, got '-1'"),
        (["sample", "run", "-n", "-1"], "-n: expected an integer >= 1, got '-1'"),
        (["train", "--lr", "nan"], "--lr: expected a number > 0, got 'nan'"),
        (["train", "--weight-decay", "lots"], "--weight-decay: expected a number >= 0 or 'prior'"),
        (["train", "--kl-warmup", "-2ep"], "--kl-warmup: expected an integer >= 0 or epochs"),
        (["train", "--max-samples", "1e30"], "--max-examples/--max-samples: expected an"),
        (["train", "--device", "gpu"], "--device: expected cpu, cuda, cuda:N, mps or auto"),
        (["evaluate", "run", "--device", "meta"], "--device: expected cpu, cuda, cuda:N"),
        (["reproduce", "figure2", "--budget", "frey_face=-5"], "--budget: expected an integer"),
        (["reproduce", "likelihood-table", "--epochs", "vae=0"], "--epochs: expected a number >"),
        (["train", "--frobnicate"], "aevb: error: unrecognized arguments: --frobnicate"),
        (["evaluate"], "aevb evaluate: error: the following arguments are required: model"),
    ],
)
def test_issue_examples_are_one_line_with_the_option(argv, message, capsys):
    status, err = run_cli(argv, capsys)
    assert status == 2
    assert assert_one_line(err, message).endswith(" --help)")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    option=st.sampled_from([(c, a) for c, a in NUMERIC if a.nargs in (None, "*")]),
    text=st.text(max_size=12) | st.from_regex(r"-?[0-9]{0,14}(\.[0-9]*)?(e-?[0-9]{1,3})?"),
)
def test_random_text_is_a_value_in_range_or_one_error_line(option, text):
    command, action = option
    flag = action.option_strings[-1]
    arg = f"{flag}={text}" if flag.startswith("--") else f"{flag}{text}"
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args([command, *_positionals(command, "run"), arg])
    except SystemExit as e:
        assert e.code == 2
        assert len(stderr.getvalue().strip().splitlines()) == 1, stderr.getvalue()
        return
    value = getattr(args, action.dest)
    kind = _number(action)
    for v in value if isinstance(value, list) else [value]:
        if isinstance(action.type, Named):  # NAME=N, returned as text
            v = kind(v.rpartition("=")[2])
        elif isinstance(v, str):  # a word such as 'prior' or a suffixed value such as '3ep'
            assert v in kind.words or v.endswith(kind.suffix)
            continue
        assert isinstance(v, kind.kind) and v <= kind.high
        assert v > kind.low if kind.low_open else v >= kind.low


def test_legitimate_values_still_work(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "e.json"
    argv = ["evaluate", tiny_run, "-k", "0", "--max-examples", "20", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["examples"] == 20 and "log_likelihood" not in result  # k=0 skips IS
    argv = ["evaluate", tiny_run, "-k", "3", "--max-examples", "7", "--batch-size", "2"]
    assert main([*argv, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["log_likelihood"]["k"] == 3
    assert main(["sample", tiny_run, "-n", "1", "--npy", str(tmp_path / "s.npy")]) == 0


def test_data_that_does_not_exist_says_no_such_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, err = run_cli(["train", "--data", "no/such/file.npy"], capsys)
    line = assert_one_line(err, "aevb: error: --data no/such/file.npy: no such file or folder")
    assert status == 2 and "binarized_mnist" not in line  # a path: no list of names
    status, err = run_cli(["train", "--data", "mnsit"], capsys)
    assert status == 2
    assert_one_line(err, "--data mnsit: no such file or folder, nor a registered dataset", "mnist")
    status, err = run_cli(["train", "--data", "digits", "--image-size", "4", "4"], capsys)
    assert status == 2
    assert_one_line(
        err, "aevb: error: --image-size: only for a folder of images, not --data digits"
    )


def test_resuming_a_folder_that_does_not_exist_says_so(capsys, tmp_path):
    status, err = run_cli(["train", "--resume", "--out", str(tmp_path / "nothere")], capsys)
    assert status == 2
    assert_one_line(err, f"aevb: error: --out {tmp_path / 'nothere'}: no such run folder")


def test_an_incomplete_best_falls_back_to_checkpoint_with_a_warning(tiny_run, tmp_path, capsys):
    import aevb.io

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "best" / "model.safetensors").unlink()
    assert main(["info", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["folder"] == str(run / "checkpoint")
    expected = f"{run}/best is incomplete (missing model.safetensors); using {run}/checkpoint"
    assert captured.err.strip() == f"aevb: warning: {expected}"
    with pytest.warns(UserWarning, match="best is incomplete"):
        assert aevb.io.find_model_folder(run) == run / "checkpoint"
    shutil.rmtree(run / "checkpoint")  # nothing to fall back to: loading names the file
    status, err = run_cli(["info", str(run), "--json"], capsys)
    assert status == 2 and "model.safetensors" in assert_one_line(err, "aevb: error: ")


def test_config_errors_name_the_option_not_the_field(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", "digits", "--latent-logvar-range", "2", "1"]
    status, err = run_cli(argv, capsys)
    line = assert_one_line(err, "aevb: error: --latent-logvar-range=")
    assert status == 2 and "VAEConfig" not in line
    parser = build_parser()
    assert _name_flags("TrainConfig.n_samples=0: x", parser) == "--samples=0: x"
    assert _name_flags("TrainConfig.kl_warmup_examples=-1: x", parser) == "--kl-warmup=-1: x"
    assert _name_flags("VAEConfig.input_dim=0: x", parser) == "VAEConfig.input_dim=0: x"


# ---- sizes that cannot be allocated ---------------------------------------------------


def test_the_parameter_count_of_the_estimate_is_exact():
    from aevb.models import VAE, VAEConfig

    for kw in (
        {"hidden": (16,), "prior": "vamp", "prior_components": 5},
        {"hidden": (8, 8), "upper_latents": (3,), "hierarchy": "top-down", "activation": "gated"},
        {"hidden": (), "body": "conv", "channels": (4,), "image_shape": (8, 8)},
    ):
        config = VAEConfig(input_dim=64, latent_dim=2, **kw)
        real = sum(p.numel() for p in VAE(config).parameters())
        assert sum(p.numel() for p in memory.meta_model(config).parameters()) == real


@pytest.mark.parametrize(
    "extra, option",
    [
        (["--hidden", "2000000"], "--hidden=2000000: training ("),
        (["--latent-dim", "5000000"], "--latent-dim=5000000: training ("),
        (["--prior", "vamp", "--prior-components", "10000000"], "--prior-components=10000000"),
        (["--samples", "1000000"], "--samples=1000000: training ("),
    ],
)
def test_a_model_that_cannot_fit_is_refused_before_allocating(
    extra, option, capsys, tmp_path, monkeypatch
):
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 2**30)
    out = tmp_path / "run"
    argv = ["train", "--data", "digits", "--hidden", "16", "--out", str(out), *extra]
    status, err = run_cli(argv, capsys)
    assert status == 2 and not out.exists() and "Traceback" not in err
    last = err.splitlines()[-1]  # after the line that says what is trained on
    assert last.startswith("aevb: error: " + option), last
    assert last.endswith("GiB, more than the 1.0 GiB of memory available")


def test_too_many_samples_are_refused_before_drawing(tiny_run, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 2**20)
    status, err = run_cli(["sample", tiny_run, "-n", "100000", "--npy", "x.npy"], capsys)
    assert status == 2
    assert_one_line(err, "aevb: error: -n 100000: drawing would need about ", "than the 1.0 MiB")


def test_out_of_memory_is_one_line(capsys, monkeypatch):
    def allocate(args):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
            "allocate memory: you tried to allocate 1000000000000 bytes.\nmore"
        )

    monkeypatch.setattr(commands, "info", allocate)
    status, err = run_cli(["info", "x"], capsys)
    assert status == 2 and "aevb: error: out of memory (" in assert_one_line(err)


# ---- disk full ------------------------------------------------------------------------


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_a_file_keeps_the_previous_one(tmp_path):
    target = tmp_path / "metrics.csv"
    write_text(target, "old\n")
    with pytest.raises(WriteError) as e:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            _full_disk()
    message = f"no space left on device while writing {target}; the previous metrics.csv is intact"
    assert str(e.value) == message
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == [target.name]
    with pytest.raises(WriteError, match="nothing was written"):
        with atomic_path(tmp_path / "new.csv"):
            _full_disk()
    with pytest.raises(FileNotFoundError):  # a file read while writing: not a write error
        with atomic_path(tmp_path / "other.csv"):
            open(tmp_path / "missing")  # noqa: SIM115


def test_a_full_disk_while_writing_a_folder_keeps_the_previous_one(tmp_path, monkeypatch):
    from tests.helpers import tiny_vae

    import aevb.io

    folder = tmp_path / "checkpoint"
    aevb.io.save_model(tiny_vae(), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(aevb.io, "save_file", lambda *a, **k: _full_disk())
    with pytest.raises(WriteError) as e:
        with atomic_dir(folder) as tmp:
            aevb.io.save_model(tiny_vae(seed=1), tmp)
    expected = f"no space left on device while writing {folder}; the previous checkpoint is intact"
    assert str(e.value) == expected
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def test_a_disk_that_fills_during_training_is_one_line_and_the_checkpoint_survives(
    tmp_path, capsys, monkeypatch
):
    import aevb.io

    out, real_save = tmp_path / "run", aevb.io.save_file

    def fill_on_second_checkpoint(tensors, filename, *args, **kwargs):
        if ".checkpoint.new." in str(filename) and (out / "checkpoint").is_dir():
            with open(filename, "wb") as fh:
                fh.write(b"\0" * 100)  # half a file, as a full disk leaves it
            raise SafetensorError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
                'space left on device" })'
            )
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(aevb.io, "save_file", fill_on_second_checkpoint)
    argv = ["train", "--data", "digits", "--hidden", "8", "--latent-dim", "2", "--out", str(out)]
    argv += ["--max-examples", "400", "--eval-every", "200", "--quiet", "--no-pictures"]
    status, err = run_cli(argv, capsys)
    expected = (
        f"aevb: error: no space left on device while writing {out / 'checkpoint'}; the previous "
        "checkpoint is intact"
    )
    assert status == 2 and err.splitlines()[-1] == expected and "Traceback" not in err
    monkeypatch.setattr(aevb.io, "save_file", real_save)
    assert aevb.io.load_model(out / "checkpoint") is not None
    assert aevb.io.read_json(out / "checkpoint" / "trainer.json")["state"]["examples"] == 200
    assert not [p for p in out.iterdir() if ".new." in p.name or ".tmp." in p.name]


# ---- anything else --------------------------------------------------------------------


def test_an_error_during_a_progress_bar_starts_on_its_own_line(capsys, monkeypatch):
    from tqdm import tqdm

    def fails_midway(args):
        bar = tqdm(total=10, file=sys.stderr, desc="work")
        bar.update(3)
        raise ValueError("boom")

    monkeypatch.setattr(commands, "info", fails_midway)
    status, err = run_cli(["info", "x"], capsys)
    assert status == 2 and err.split("\n")[-2] == "aevb: error: boom"


def test_an_unexpected_error_is_one_line_with_status_1_or_a_traceback_on_request(
    capsys, monkeypatch
):
    def bug(args):
        raise KeyError("oops")

    monkeypatch.setattr(commands, "info", bug)
    status, err = run_cli(["info", "x"], capsys)
    assert status == 1
    assert_one_line(err, "aevb: error: unexpected KeyError: 'oops'", "AEVB_TRACEBACK=1")
    monkeypatch.setenv("AEVB_TRACEBACK", "1")
    with pytest.raises(KeyError):
        main(["info", "x"])


def test_operating_system_errors_name_the_file(capsys, monkeypatch):
    def denied(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/root/run")

    monkeypatch.setattr(commands, "info", denied)
    status, err = run_cli(["info", "x"], capsys)
    assert status == 2 and assert_one_line(err) == "aevb: error: /root/run: Permission denied"


def test_warnings_are_one_line(capsys, monkeypatch):
    import warnings

    def warns(args):
        warnings.warn("something odd\nsecond line", RuntimeWarning, stacklevel=1)
        return "done"

    monkeypatch.setattr(commands, "info", warns)
    assert main(["info", "x"]) == 0
    assert capsys.readouterr().err == "aevb: warning: something odd second line\n"


def test_keyboard_interrupt_keeps_its_status(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "info", interrupted)
    assert main(["info", "x"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_sigterm_stops_a_training_run_with_a_checkpoint_that_resumes(tmp_path):
    """`kill` (SIGTERM) on `aevb train`: status 143, one line naming the examples and the
    checkpoint, and the checkpoint holds the step where it stopped; --resume goes on."""
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "aevb", "train", "--data", "digits", "--hidden", "16"]
    cmd += ["--latent-dim", "2", "--max-examples", "100000000", "--eval-every", "500"]
    cmd += ["--out", str(out), "--no-pictures", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint" / "trainer.json").exists():  # training, handlers set
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM == 143
    lines = err.strip().splitlines()
    assert lines[-1].startswith("aevb: training stopped by SIGTERM after ")
    assert lines[-1].endswith(f"checkpoint {out / 'checkpoint'}; resume to continue")
    examples = json.loads((out / "checkpoint" / "trainer.json").read_text())["state"]["examples"]
    assert f"after {examples:,} examples" in lines[-1]
    again = ["train", "--resume", "--out", str(out), "--max-examples", str(examples + 300)]
    assert main([*again, "--quiet", "--no-pictures"]) == 0
    state = json.loads((out / "checkpoint" / "trainer.json").read_text())["state"]
    assert state["examples"] == examples + 300


def test_threads_are_set_from_the_option(tiny_run, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    try:
        assert main(["sample", tiny_run, "-n", "1", "--npy", "s.npy", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_reader_that_stops_early_is_not_an_error(tiny_run):
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "aevb", "info", tiny_run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # as `aevb info run | head -0` does, before anything is printed
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == ""


def test_a_warning_while_a_bar_is_drawn_keeps_the_bar(capsys):
    """The warning goes above the bar (tqdm.write), and the bar goes on being drawn."""
    import io

    from tqdm import tqdm

    from aevb.cli import _show_warning

    screen = io.StringIO()
    bar = tqdm(total=10, file=screen, mininterval=0)
    try:
        bar.update(3)
        _show_warning("odd\nvalue", RuntimeWarning, "f.py", 1)
        bar.update(3)
        assert bar in tqdm._instances and "6/10" in screen.getvalue()
    finally:
        bar.close()
    assert capsys.readouterr().err == "aevb: warning: odd value\n"


def test_a_write_error_survives_pickling_with_its_message(tmp_path):
    """Worker processes (aevb reproduce --jobs) send their errors back pickled."""
    import pickle

    from aevb.atomic import WriteError

    (tmp_path / "checkpoint").mkdir()
    error = WriteError("no space left on device", tmp_path / "checkpoint")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is WriteError and str(again) == str(error)
    assert again.reason == "no space left on device" and again.path == error.path
    assert str(again).endswith("the previous checkpoint is intact")
