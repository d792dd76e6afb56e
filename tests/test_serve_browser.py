"""``aevb serve`` in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``,
driven by Playwright) against the real server (uvicorn on a free 127.0.0.1 port) serving
a 28x28 model trained for a few seconds on MNIST test digits (ten epochs when recording).

It moves a slider and checks the image changed, draws samples and interpolates between
two, clicks the projection, uploads a PNG and reads back its score, and measures the
latency from a slider's input event to the new image (median of 20 moves; printed). With
``AEVB_RECORD=1`` it also writes ``benchmarks/results/serve-latency.json`` and
``docs/figures/serve.png`` (otherwise only a screenshot in a temporary folder):

    AEVB_RECORD=1 .venv/bin/python -m pytest tests/test_serve_browser.py -q -s
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from aevb.cli import main

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "sudo apt-get install -y chromium (Debian, Ubuntu)"
RECORD = os.environ.get("AEVB_RECORD") == "1"
MOVES = 20
"""Slider moves timed for the latency (after three untimed ones)."""
EXAMPLES = 32_000 if RECORD else 2000
"""Training examples: a few seconds for the test, ten epochs for the recorded figure."""
TRAIN = ["--latent-dim", "8", "--hidden", "128", "--max-examples", str(EXAMPLES)]
TRAIN += ["--eval-every", str(min(EXAMPLES, 3200)), "--optimizer", "adam", "--lr", "3e-3"]
TRAIN += ["--init", "default", "--batch-size", "100", "--quiet", "--no-pictures"]


def _missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if any(importlib.util.find_spec(m) is None for m in ("playwright", "fastapi", "uvicorn")):
        return "Playwright or the serve extra is not installed: pip install -e '.[dev]'"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: install it with {INSTALL}"
    return None


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    """The URL of the explorer of a fresh 28x28 model, served by uvicorn in a thread."""
    reason = _missing()
    if reason:
        warnings.warn(f"browser test skipped: {reason}", stacklevel=1)
        pytest.skip(reason)
    import uvicorn

    from aevb import data as aevb_data
    from aevb.serve import create_app

    base = tmp_path_factory.mktemp("browser")
    digits = aevb_data.load("mnist_test")
    n = 4000  # labelled 28x28 digits, as an .npz of uint8 images: 80/10/10 split
    x = np.rint(digits.test[:n].reshape(n, 28, 28) * 255).astype(np.uint8)
    np.savez(base / "mnist.npz", x=x, y=digits.labels["test"][:n])
    run = base / "run"
    assert main(["train", "--data", str(base / "mnist.npz"), "--out", str(run), *TRAIN]) == 0
    app = create_app(run, data=aevb_data.load(str(base / "mnist.npz")))
    # port 0: uvicorn binds a free port itself (a socket handed to it would lack
    # TCP_NODELAY, and Nagle's algorithm would add ~40 ms to every response)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(page_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_url)
        page.wait_for_selector("body[data-ready='1']")
        yield page
        browser.close()
        assert not errors, errors


def decoded_changes(page, action) -> None:
    """Run ``action`` and wait until the decoded image has been replaced and drawn."""
    before = page.eval_on_selector("#decoded", "img => img.src")
    action()
    page.wait_for_function(
        "before => { const img = document.getElementById('decoded');"
        " return img.src !== before && img.complete && !document.querySelector('#status.error') }",
        arg=before,
    )


def test_moving_a_slider_changes_the_image(page):
    assert page.inner_text("#model-name") == "run"
    assert page.locator("#sliders input[type=range]").count() == 8
    slider = page.locator("#sliders input[type=range]").first
    box = slider.bounding_box()
    decoded_changes(page, lambda: page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2))
    low = page.locator("#decoded").screenshot()
    right = box["x"] + box["width"] - 2
    decoded_changes(page, lambda: page.mouse.click(right, box["y"] + box["height"] / 2))
    assert float(slider.input_value()) > 3 and page.locator("#decoded").screenshot() != low


def test_samples_interpolation_and_the_projection(page):
    page.click("#sample-form button")
    page.wait_for_function("document.querySelectorAll('#samples img').length === 16")
    thumbs = page.locator("#samples img")
    decoded_changes(page, lambda: thumbs.nth(2).click())
    thumbs.nth(5).click()
    page.click("#interp-form button")
    page.wait_for_function("document.querySelectorAll('#interpolation img').length === 10")
    values = page.eval_on_selector_all("#sliders input", "s => s.map(x => x.value)")
    decoded_changes(page, lambda: page.click("#map", position={"x": 40, "y": 60}))
    assert page.eval_on_selector_all("#sliders input", "s => s.map(x => x.value)") != values
    assert page.locator("#legend span").count() == 10  # the projection, coloured by label


def test_an_upload_is_scored(page):
    from PIL import Image

    from aevb import data as aevb_data

    row = aevb_data.load("mnist_test").test[4500]  # not among the training rows
    buffer = io.BytesIO()
    Image.fromarray(np.rint(row.reshape(28, 28) * 255).astype(np.uint8)).save(buffer, "PNG")
    file = {"name": "digit.png", "mimeType": "image/png", "buffer": buffer.getvalue()}
    decoded_changes(page, lambda: page.set_input_files("#upload", files=[file]))
    elbo = page.inner_text("[data-score='elbo']")
    assert elbo.endswith(" nats") and 0 < float(elbo.split()[0]) < 28 * 28 * np.log(2)
    assert "% of the reference scores" in page.inner_text("#scores")


def test_slider_latency(page, tmp_path):
    """Median time from a slider's input event to the new image drawn (``load``)."""
    times = page.evaluate(
        """async (moves) => {
          const slider = document.querySelector('#sliders input[type=range]');
          const img = document.getElementById('decoded');
          const times = [];
          for (let i = 0; i < moves + 3; i += 1) {
            const loaded = new Promise((done) => img.addEventListener('load', done, {once: true}));
            const start = performance.now();
            slider.value = (-3 + 6 * ((i * 7) % moves) / moves).toFixed(2);
            slider.dispatchEvent(new Event('input', {bubbles: true}));
            await loaded;
            if (i >= 3) times.push(performance.now() - start);
          }
          return times;
        }""",
        MOVES,
    )
    median = statistics.median(times)
    print(f"\nslider -> image latency, 28x28 model, median of {MOVES}: {median:.1f} ms")
    screenshot = tmp_path / "serve.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert len(times) == MOVES and all(t > 0 for t in times)
    if RECORD:
        page.screenshot(path=str(REPO / "docs" / "figures" / "serve.png"), full_page=True)
        record = {
            "what": "time from a slider's input event to the decoded image's load event in "
            "headless Chromium, aevb serve on 127.0.0.1",
            "median_ms": round(median, 2),
            "p90_ms": round(float(np.percentile(times, 90)), 2),
            "times_ms": [round(t, 2) for t in times],
            "model": "MLP 784-128-8 (Bernoulli) on 28x28 MNIST test digits, "
            f"{EXAMPLES:,} training examples",
            "machine": _machine(),
            "command": "AEVB_RECORD=1 .venv/bin/python -m pytest tests/test_serve_browser.py -q -s",
            "date": datetime.date.today().isoformat(),
        }
        path = REPO / "benchmarks" / "results" / "serve-latency.json"
        path.write_text(json.dumps(record, indent=2) + "\n")


def _machine() -> dict[str, object]:
    """The CPU, its load and the software the latency was measured with."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    chromium = subprocess.run(
        [str(CHROMIUM), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "browser": chromium,
    }
