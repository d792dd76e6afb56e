"""``aevb serve``'s HTTP API (Starlette's test client): every endpoint, every bad input
(a 4xx with a message, never a crash), parallel requests, and the command."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'aevb[serve]'")
pytest.importorskip("httpx", reason="the test client needs httpx: pip install -e '.[dev]'")

with warnings.catch_warnings():  # Starlette >= 1 prefers httpx2 to httpx: same client
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from aevb import viz  # noqa: E402
from aevb.apps import anomaly  # noqa: E402
from aevb.cli import main  # noqa: E402
from aevb.data import load_dataset  # noqa: E402
from aevb.io import load_model, save_model  # noqa: E402
from aevb.models import VAE, VAEConfig  # noqa: E402
from aevb.serve import cli as serve_cli  # noqa: E402
from aevb.serve.app import MAX_K, MAX_SAMPLES, MAX_STEPS, create_app  # noqa: E402
from aevb.serve.uploads import MAX_PIXELS, read_image  # noqa: E402

TRAIN = ["train", "--data", "digits", "--hidden", "32", "--max-examples", "1500"]
TRAIN += ["--eval-every", "1500", "--optimizer", "adam", "--lr", "3e-3", "--init", "default"]
TRAIN += ["--batch-size", "50", "--quiet", "--no-pictures"]
LIMIT = 20_000  # max_upload_bytes of the clients below


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs on the bundled digits: 2-D latents, and a conditional model with 4-D ones."""
    base = tmp_path_factory.mktemp("serve")
    assert main([*TRAIN, "--latent-dim", "2", "--out", str(base / "d2")]) == 0
    cond = [*TRAIN, "--latent-dim", "4", "--conditional", "--out", str(base / "c4")]
    assert main(cond) == 0
    return base


@pytest.fixture(scope="module")
def client(runs, digits):
    with TestClient(create_app(runs / "d2", data=digits, max_upload_bytes=LIMIT)) as c:
        yield c


@pytest.fixture(scope="module")
def conditional(runs, digits):
    with TestClient(create_app(runs / "c4", data=digits, max_upload_bytes=LIMIT)) as c:
        yield c


def png(pixels: np.ndarray, mode: str = "L", fmt: str = "PNG") -> bytes:
    """``pixels`` (values in [0, 1]) as image file bytes."""
    image = Image.fromarray(np.rint(pixels * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, fmt)
    return buffer.getvalue()


def digit(digits, i: int = 0) -> bytes:
    return png(digits.test[i].reshape(8, 8))


def pixels(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def image_of(url: str) -> np.ndarray:
    """The pixels of a ``data:image/png;base64,...`` URL."""
    return pixels(base64.b64decode(url.split(",", 1)[1]))


def upload(client, content: bytes, name: str = "x.png", **form):
    return client.post("/api/upload", files={"file": (name, content, "image/png")}, data=form)


def detail(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["detail"]


def test_the_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/static/explorer.js">' in page.text
    js, css = client.get("/static/explorer.js"), client.get("/static/style.css")
    assert js.headers["content-type"].startswith("text/javascript") and "api/decode" in js.text
    assert css.headers["content-type"].startswith("text/css")
    for path in ("/static/app.py", "/static/..%2Fapp.py", "/static/index.html"):
        assert client.get(path).status_code == 404


def test_info_ranks_the_dimensions_by_kl(client):
    info = client.get("/api/info").json()
    assert info["code_dim"] == 2 and info["image_shape"] == [8, 8] and info["classes"] == 0
    assert info["map"] == "manifold" and info["data"] == "digits"
    values = [d["value"] for d in info["dims"]]
    assert sorted(d["dim"] for d in info["dims"]) == [0, 1] and values == sorted(values)[::-1]
    assert info["ranked_by"].startswith("KL per dimension")
    limits = {"samples": MAX_SAMPLES, "steps": MAX_STEPS, "k": MAX_K, "upload_bytes": LIMIT}
    assert info["limits"] == limits
    assert info["curve"] and info["card"]


def test_decode_is_the_decoder_mean_as_8_bit_png(client, runs):
    z = [0.7, -1.2]
    response = client.post("/api/decode", json={"z": z})
    assert response.headers["content-type"] == "image/png"
    model = load_model(runs / "d2")
    with torch.no_grad():
        mean = model.decode(torch.tensor([z])).mean.reshape(8, 8).numpy()
    assert np.array_equal(pixels(response.content), np.rint(mean * 255).astype(np.uint8))


def test_manifold_is_the_libraries_grid(client, runs):
    result = client.get("/api/manifold").json()
    assert result["values"] == pytest.approx(viz.manifold_values(20).tolist())
    image = image_of(result["image"])
    grid = viz.image_grid(viz.manifold_grid(load_model(runs / "d2"), 20), (8, 8), nrow=20)
    assert image.shape == (179, 179)
    assert np.abs(image.astype(int) - np.rint(grid * 255)).max() <= 1


def test_projection_is_pca_of_encoded_test_data(conditional, client, digits):
    result = conditional.get("/api/projection").json()
    n = len(digits.test)
    assert len(result["points"]) == n and result["labels"] == digits.labels["test"].tolist()
    components = np.array(result["components"])
    assert components.shape == (2, 4)
    assert np.allclose(components @ components.T, np.eye(2), atol=1e-6)
    assert detail(client.get("/api/projection"), 404).startswith("no projection")
    assert "2-D latent space" in detail(conditional.get("/api/manifold?label=0"), 404)


def test_samples_are_seeded_and_carry_their_codes(client):
    first = client.post("/api/sample", json={"n": 5, "seed": 3}).json()["samples"]
    again = client.post("/api/sample", json={"n": 5, "seed": 3}).json()["samples"]
    assert first == again and len(first) == 5
    assert all(s["image"].startswith("data:image/png;base64,") and len(s["z"]) == 2 for s in first)
    cold = client.post("/api/sample", json={"n": 3, "temperature": 0}).json()["samples"]
    assert len({s["image"] for s in cold}) == 1  # every draw at the prior's mean


def test_interpolation_runs_from_a_to_b(client):
    a, b = [-1.0, 0.5], [1.5, -0.5]
    images = client.post("/api/interpolate", json={"a": a, "b": b, "steps": 4}).json()["images"]
    assert len(images) == 4
    ends = [client.post("/api/decode", json={"z": z}).content for z in (a, b)]
    assert [image_of(images[i]).tolist() for i in (0, -1)] == [pixels(c).tolist() for c in ends]


def test_an_upload_is_scored_as_the_anomaly_module_scores_it(client, digits, runs):
    content = digit(digits)
    result = upload(client, content).json()
    row = read_image(content, (8, 8))[None]
    assert np.allclose(row, np.rint(digits.test[:1] * 255) / 255)
    model = load_model(runs / "d2")
    elbo = anomaly.anomaly_scores(model, row, score="elbo")[0]
    assert result["scores"]["elbo"]["value"] == pytest.approx(elbo, rel=1e-5)
    assert set(result["scores"]) == {"elbo", "nll"}
    for score in result["scores"].values():
        assert 0 <= score["percentile"] <= 100 and "digits, valid split" in score["reference"]
    assert len(result["z"]) == 2 and result["reconstruction"].startswith("data:image/png")
    # a typical test digit sits inside the reference distribution, a black square does not
    black = upload(client, png(np.zeros((8, 8)))).json()["scores"]["elbo"]
    inverted = upload(client, png(np.ones((8, 8))), invert="true").json()["scores"]["elbo"]
    assert black["value"] == pytest.approx(inverted["value"])


@pytest.mark.parametrize(
    "mode, fmt", [("RGB", "JPEG"), ("RGBA", "PNG"), ("P", "PNG"), ("I;16", "PNG")]
)
def test_uploads_of_any_mode_and_size_become_model_rows(client, mode, fmt):
    big = np.tile(np.linspace(0, 1, 40), (30, 1))  # 30x40: resized to 8x8
    result = client.post(
        "/api/upload", files={"file": ("photo.bin", png(big, mode, fmt), "text/plain")}
    )
    assert result.status_code == 200, result.text
    assert image_of(result.json()["input"]).shape == (8, 8)


def test_a_runs_anomaly_json_gives_the_percentiles_and_the_flag(runs, digits, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs / "d2", run)
    model = load_model(run)
    detector = anomaly.fit_detector(model, digits.valid, score="nll", k=20, contamination=0.1)
    detector.save(run)
    with TestClient(create_app(run, data=digits)) as c:
        assert c.get("/api/info").json()["scores"]["nll"] == "anomaly.json"
        nll = upload(c, digit(digits), k="20").json()["scores"]["nll"]
        assert nll["reference"] == "anomaly.json" and isinstance(nll["flagged"], bool)
        expected = detector.percentile_of(np.array([nll["value"]]))[0]
        assert nll["percentile"] == pytest.approx(expected)
        assert nll["flagged"] == (nll["value"] > detector.threshold)


def test_a_model_folder_without_run_or_data(tmp_path, digits):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=64, latent_dim=3, hidden=(8,), image_shape=(8, 8)))
    save_model(model, tmp_path / "m")
    with TestClient(create_app(tmp_path / "m")) as c:
        info = c.get("/api/info").json()
        assert [d["dim"] for d in info["dims"]] == [0, 1, 2] and info["map"] is None
        assert info["ranked_by"].startswith("index") and info["scores"] == {}
        assert detail(c.get("/api/card"), 404).startswith("no model card")
        assert detail(c.get("/api/curve.png"), 404).startswith("no training curve")
        scores = upload(c, digit(digits)).json()["scores"]
        assert scores["elbo"]["percentile"] is None and scores["nll"]["reference"] is None


def test_card_and_curve(client, runs):
    assert client.get("/api/card").json()["text"].startswith("# Model card")
    curve = client.get("/api/curve.png")
    assert curve.headers["content-type"] == "image/png" and curve.content[:4] == b"\x89PNG"


def test_a_conditional_model_takes_a_class(conditional, digits):
    one = conditional.post("/api/decode", json={"z": [0, 0, 0, 0], "label": 1}).content
    seven = conditional.post("/api/decode", json={"z": [0, 0, 0, 0], "label": 7}).content
    assert one != seven
    no_label = conditional.post("/api/decode", json={"z": [0, 0, 0, 0]})
    assert "expected a class in [0, 10)" in detail(no_label, 422)
    twelve = conditional.post("/api/decode", json={"z": [0] * 4, "label": 12})
    assert "[0, 10)" in detail(twelve, 422)
    samples = conditional.post("/api/sample", json={"n": 3, "label": 4}).json()["samples"]
    assert len(samples) == 3 and len(samples[0]["z"]) == 4
    result = upload(conditional, digit(digits), label="3").json()
    assert result["scores"]["elbo"]["percentile"] is not None
    assert "class" in detail(upload(conditional, digit(digits)), 422)


def test_bad_uploads_get_a_4xx_with_a_message(client, digits):
    good = digit(digits)
    assert "upload over 20,000 bytes" in detail(upload(client, good + b"\0" * LIMIT), 413)
    form = {"content-type": "multipart/form-data; boundary=b"}
    huge = client.post("/api/upload", content=b"x" * (LIMIT * 5), headers=form)
    assert "request body over" in detail(huge, 413)

    def chunks():  # no declared length: counted as it arrives
        for _ in range(10):
            yield b"x" * LIMIT

    streamed = client.post("/api/upload", content=chunks(), headers=form)
    assert "request body over" in detail(streamed, 413)
    text = upload(client, b"just some text, named like a picture", name="digit.png")
    assert "expected a PNG or JPEG image" in detail(text, 415)
    assert "not a readable PNG image" in detail(upload(client, good[: len(good) // 2]), 400)
    fake_jpeg = b"\xff\xd8\xff" + b"\0" * 100
    assert "not a readable JPEG image" in detail(upload(client, fake_jpeg), 400)
    bomb = png(np.zeros((4100, 4100)))  # small file, 16.8 million pixels
    assert len(bomb) < LIMIT and 4100 * 4100 > MAX_PIXELS
    assert "expected at most" in detail(upload(client, bomb), 413)
    assert "file: Field required" in detail(client.post("/api/upload", data={"k": "5"}), 422)
    assert detail(upload(client, good, k=str(MAX_K + 1)), 422).startswith("k: ")
    assert detail(upload(client, good, label="-1"), 422).startswith("label: ")
    assert "not conditional" in detail(upload(client, good, label="2"), 422)


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/api/decode", '{"z": [0.5]}', "z has 1 values: expected 2, the model's code size"),
        ("/api/decode", '{"z": [0, 0, 0]}', "expected 2, the model's code size"),
        ("/api/decode", '{"z": [NaN, 0]}', "z.0: Input should be a finite number"),
        ("/api/decode", '{"z": [0, Infinity]}', "z.1: Input should be a finite number"),
        ("/api/decode", '{"z": [0, 1e300]}', "z.1: Input should be less than or equal to 100"),
        ("/api/decode", '{"z": []}', "z: List should have at least 1 item"),
        ("/api/decode", '{"z": "0, 0"}', "z: Input should be a valid list"),
        ("/api/decode", "{z: [0, 0]}", "body: not valid JSON"),
        ("/api/sample", '{"n": 1000000000}', "n: Input should be less than or equal to 64"),
        ("/api/sample", '{"n": 0}', "n: Input should be greater than or equal to 1"),
        ("/api/sample", '{"temperature": NaN}', "temperature: Input should be a finite number"),
        ("/api/sample", '{"seed": -1}', "seed: Input should be greater than or equal to 0"),
        ("/api/interpolate", '{"a": [0, 0], "b": [1, 1], "steps": 1000}', "steps: Input should"),
        ("/api/interpolate", '{"a": [0, 0], "b": [1]}', "b has 1 values: expected 2"),
    ],
)
def test_bad_values_get_a_422_naming_the_field(client, path, body, message):
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert message in detail(response, 422)


def test_parallel_requests_get_the_answers_of_serial_ones(client, digits):
    codes = [[np.sin(i), np.cos(i)] for i in range(16)]
    images = [digit(digits, i) for i in range(4)]
    serial = [client.post("/api/decode", json={"z": z}).content for z in codes]
    scores = [upload(client, c).json()["scores"] for c in images]

    def decode(z):
        return client.post("/api/decode", json={"z": z}).content

    def score(content):
        return upload(client, content).json()["scores"]

    with ThreadPoolExecutor(8) as pool:
        decoded = pool.map(decode, codes * 3)
        scored = pool.map(score, images * 3)
        sampled = pool.map(lambda s: client.post("/api/sample", json={"n": 4, "seed": s}), range(8))
        assert list(decoded) == serial * 3
        assert list(scored) == scores * 3
        assert all(r.status_code == 200 for r in sampled)


def test_the_command_serves_the_run_with_its_data(runs, monkeypatch, capsys):
    import uvicorn

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    assert main(["serve", str(runs / "d2"), "--port", "8765"]) == 0
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8765
    with TestClient(calls["app"]) as c:
        assert c.get("/api/info").json()["data"] == "digits"
    assert "http://127.0.0.1:8765/" in capsys.readouterr().out
    assert main(["serve", str(runs / "d2"), "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "aevb: warning: --host 0.0.0.0: the explorer is reachable from the network" in err


def test_command_errors_are_one_line(runs, tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    save_model(VAE(VAEConfig(input_dim=5, latent_dim=2, hidden=(4,))), tmp_path / "table")
    assert main(["serve", str(tmp_path / "table")]) == 2
    assert "this model has no image_shape" in capsys.readouterr().err
    assert main(["serve", str(runs / "d2"), "--data", "frey_face"]) == 2
    err = capsys.readouterr().err.strip()
    assert "reference data frey_face: has 560 values per row, the model expects 64" in err
    monkeypatch.setattr(serve_cli.importlib.util, "find_spec", lambda name: None)
    assert main(["serve", str(runs / "d2")]) == 2
    err = capsys.readouterr().err
    assert err == "aevb: error: aevb serve needs the serve extra: pip install 'aevb[serve]'\n"


def test_the_cli_imports_no_web_framework():
    code = "import sys, aevb.cli; aevb.cli.build_parser(); print(sorted(m for m in sys.modules "
    code += "if m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette', 'multipart')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
