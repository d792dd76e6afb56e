"""Checkpoints: round trip, and one-line errors for everything that can be wrong."""

import json

import pytest
import torch

from aevb import io as aevb_io

from helpers import tiny_vae


def test_model_round_trip_keeps_weights_and_config(tmp_path):
    model = tiny_vae(likelihood="gaussian", gaussian_variance="learned")
    aevb_io.save_model(model, tmp_path / "m")
    loaded = aevb_io.load_model(tmp_path / "m")
    assert loaded.config == model.config
    for (k, v), (k2, v2) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2)
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model_class"] == "VAE" and meta["config"]["hidden"] == [8]
    # nothing pickled: the weights file is safetensors (8-byte header length, then JSON)
    raw = (tmp_path / "m" / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and json.loads(raw[8 : 8 + n])


def test_missing_folder(tmp_path):
    with pytest.raises(aevb_io.CheckpointError, match="no such file or folder"):
        aevb_io.load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(aevb_io.CheckpointError, match="expected an aevb model folder"):
        aevb_io.load_model(tmp_path / "empty")


def test_truncated_weights(tmp_path):
    aevb_io.save_model(tiny_vae(), tmp_path / "m")
    f = tmp_path / "m" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(aevb_io.CheckpointError, match="not a readable safetensors file"):
        aevb_io.load_model(tmp_path / "m")


def test_corrupt_json_and_unknown_class_and_bad_field(tmp_path):
    aevb_io.save_model(tiny_vae(), tmp_path / "m")
    cfg = tmp_path / "m" / "config.json"
    good = json.loads(cfg.read_text())
    cfg.write_text("{not json")
    with pytest.raises(aevb_io.CheckpointError, match="not valid JSON"):
        aevb_io.load_model(tmp_path / "m")
    cfg.write_text(json.dumps({**good, "model_class": "Transformer"}))
    with pytest.raises(aevb_io.CheckpointError, match="expected format_version 1 and a model_cl"):
        aevb_io.load_model(tmp_path / "m")
    cfg.write_text(json.dumps({**good, "config": {**good["config"], "latent_dim": -1}}))
    with pytest.raises(aevb_io.CheckpointError, match="latent_dim=-1: expected a number > 0"):
        aevb_io.load_model(tmp_path / "m")


def test_weights_that_do_not_fit_the_config(tmp_path):
    aevb_io.save_model(tiny_vae(), tmp_path / "m")
    cfg = tmp_path / "m" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["config"]["hidden"] = [9]
    cfg.write_text(json.dumps(meta))
    with pytest.raises(aevb_io.CheckpointError, match="weights do not fit the config"):
        aevb_io.load_model(tmp_path / "m")


def test_interrupted_folder_swap_is_read_from_the_aside_copy_without_moving_it(tmp_path):
    """A reader may race a live writer's swap: it reads the aside copy and leaves the
    folders as they are (the next writer holding the run restores them)."""
    from aevb.atomic import atomic_dir

    with atomic_dir(tmp_path / "checkpoint") as tmp:
        aevb_io.save_model(tiny_vae(), tmp)
    # simulate a crash between the two renames: only the aside copy exists
    (tmp_path / "checkpoint").rename(tmp_path / ".checkpoint.old")
    model = aevb_io.load_model(tmp_path)
    assert model.config.input_dim == 6
    assert not (tmp_path / "checkpoint").exists() and (tmp_path / ".checkpoint.old").is_dir()


def test_failed_write_leaves_the_previous_checkpoint(tmp_path):
    from aevb.atomic import atomic_dir

    with atomic_dir(tmp_path / "ck") as tmp:
        aevb_io.save_model(tiny_vae(seed=1), tmp)
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "ck") as tmp:
        aevb_io.save_model(tiny_vae(seed=2), tmp)
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    a = aevb_io.load_model(tmp_path / "ck")
    torch.testing.assert_close(a.encoder_head.weight, tiny_vae(seed=1).encoder_head.weight)


def test_a_byte_changed_inside_the_weights_is_refused_by_their_checksum(tmp_path):
    aevb_io.save_model(tiny_vae(), tmp_path / "m")
    weights = tmp_path / "m" / aevb_io.WEIGHTS_FILE
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0x40  # inside the last tensor's bytes: the header still parses
    weights.write_bytes(bytes(raw))
    with pytest.raises(aevb_io.CheckpointError, match="do not match the checksum"):
        aevb_io.load_model(tmp_path / "m")


def test_weights_saved_without_a_checksum_still_load(tmp_path):
    """Folders written before the checksum existed: nothing to check, nothing refused."""
    from safetensors.torch import load_file, save_file

    model = tiny_vae()
    aevb_io.save_model(model, tmp_path / "m")
    weights = tmp_path / "m" / aevb_io.WEIGHTS_FILE
    metadata = aevb_io.read_tensors_metadata(weights)
    save_file(load_file(weights), weights)  # as written then: no aevb metadata at all
    loaded = aevb_io.load_model(tmp_path / "m")
    state, again = model.state_dict(), loaded.state_dict()
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)
    # a header that keeps the other aevb keys but lost the checksum's is damaged, not old
    del metadata[aevb_io.TENSORS_HASH_KEY]
    save_file(load_file(weights), weights, metadata=metadata)
    with pytest.raises(aevb_io.CheckpointError, match="no checksum of the tensors"):
        aevb_io.load_model(tmp_path / "m")
