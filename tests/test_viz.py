"""Facts about the pictures: grid arithmetic, exact pixels, the inverse-CDF manifold,
interpolation end points, training curves and writes that never leave half a file."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from scipy.stats import norm
from torch import nn

from aevb import viz

TOL = 0.5 / 255 + 1e-6  # half an 8-bit PNG level: pixels are rounded to the nearest


class StandIn(nn.Module):
    """The model API the pictures use: linear encoder, sigmoid-linear decoder.

    ``identity=True`` makes the decoder return z itself as the "image" (D = Nz), so the
    latent points a function decodes can be read off its output. Every decode call records
    (training flag, grad enabled, z).
    """

    def __init__(
        self,
        image_shape: tuple[int, ...] | None = (8, 8),
        latent_dim: int = 2,
        *,
        input_dim: int | None = None,
        identity: bool = False,
    ) -> None:
        super().__init__()
        d = latent_dim if identity else input_dim or math.prod(image_shape)
        self.config = SimpleNamespace(
            latent_dim=latent_dim, code_dim=latent_dim, image_shape=image_shape, condition_dim=0
        )
        self.encoder = nn.Linear(d, 2 * latent_dim)
        self.decoder = nn.Linear(latent_dim, d)
        g = torch.Generator().manual_seed(0)
        for p in self.parameters():
            nn.init.normal_(p, 0.0, 0.5, generator=g)
        self.identity = identity
        self.calls: list[tuple[bool, bool, torch.Tensor]] = []

    def encode(self, x: torch.Tensor) -> SimpleNamespace:
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return SimpleNamespace(mean=mean, logvar=logvar)

    def separate_condition(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x, None

    def decode(self, z: torch.Tensor, condition: None = None) -> SimpleNamespace:
        assert condition is None
        self.calls.append((self.training, torch.is_grad_enabled(), z.detach().clone()))
        return SimpleNamespace(mean=z if self.identity else torch.sigmoid(self.decoder(z)))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).mean).mean

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        condition: None = None,
    ) -> torch.Tensor:
        assert condition is None
        z = temperature * torch.randn(n, self.config.latent_dim, generator=generator)
        return self.decode(z).mean


def ppf_axis(n: int) -> np.ndarray:
    """Expected manifold values: Gaussian quantiles of the open grid (i + 0.5) / n."""
    return norm.ppf((np.arange(n) + 0.5) / n)


def read_png(path) -> np.ndarray:
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


# --- image_grid ------------------------------------------------------------------------


def test_image_grid_places_tiles_with_separators_and_pads_last_row():
    images = (np.arange(5 * 6, dtype=np.float32).reshape(5, 6) + 1) / 100  # (N=5, D=2*3)
    grid = viz.image_grid(images, (2, 3), nrow=3)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2)
    for i in range(5):
        r, c = divmod(i, 3)
        np.testing.assert_array_equal(
            grid[3 * r : 3 * r + 2, 4 * c : 4 * c + 3], images[i].reshape(2, 3)
        )
    assert (grid[2, :] == 1.0).all()  # separator rows and columns
    assert (grid[:, [3, 7]] == 1.0).all()
    assert (grid[3:5, 8:11] == 1.0).all()  # the padding tile
    black = viz.image_grid(images, (2, 3), nrow=3, pad_value=0.0)
    assert (black[2, :] == 0.0).all() and (black[3:5, 8:11] == 0.0).all()


def test_image_grid_rgb_is_channels_last_and_single_channel_is_grey():
    images = torch.rand(4, 2 * 2 * 3, generator=torch.Generator().manual_seed(0))
    grid = viz.image_grid(images, (2, 2, 3), nrow=2)
    assert grid.shape == (5, 5, 3)
    np.testing.assert_array_equal(grid[3:5, 3:5], images[3].reshape(2, 2, 3).numpy())
    assert (grid[2] == 1.0).all()
    assert viz.image_grid(images[:, :4], (2, 2, 1), nrow=2).shape == (5, 5)


def test_image_grid_shape_arithmetic_and_clipping():
    grid = viz.image_grid(np.full((3, 16), 2.0), (4, 4), nrow=10)  # fewer images than nrow
    assert grid.shape == (4, 3 * 4 + 2)
    assert (grid == 1.0).all()  # clipped to [0, 1]
    assert viz.image_grid(-np.ones((7, 4, 4)), (4, 4), nrow=3).shape == (3 * 4 + 2, 3 * 4 + 2)
    assert viz.image_grid(-np.ones((7, 4, 4)), (4, 4), nrow=3).min() == 0.0


@pytest.mark.parametrize(
    ("images", "shape", "nrow", "message"),
    [
        (np.zeros((2, 10)), (3, 3), 2, "do not match image_shape=(3, 3)"),
        (np.zeros((2, 8)), (2, 2, 2), 2, "image_shape=(2, 2, 2): expected"),
        (np.zeros((2, 4)), (2, 2), 0, "nrow=0: expected at least 1"),
        (np.zeros((0, 4)), (2, 2), 1, "no images to draw"),
    ],
)
def test_image_grid_rejects_bad_input(images, shape, nrow, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        viz.image_grid(images, shape, nrow)


# --- saving ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 3])
def test_save_image_grid_is_pixel_exact(tmp_path, scale):
    images = torch.rand(7, 20, generator=torch.Generator().manual_seed(1))
    grid = viz.image_grid(images, (4, 5), nrow=3)
    out = viz.save_image_grid(images, (4, 5), tmp_path / "grid.png", nrow=3, scale=scale)
    assert out == tmp_path / "grid.png"
    png = read_png(out)
    assert png.shape == (scale * grid.shape[0], scale * grid.shape[1], 4)
    expected = np.repeat(np.repeat(grid, scale, 0), scale, 1)
    for channel in range(3):
        np.testing.assert_allclose(png[..., channel], expected, atol=TOL)


def test_save_image_grid_defaults_square_and_enlarges_small_grids(tmp_path):
    images = np.zeros((10, 16))  # 10 images -> 4 per row, 3 rows of 4x4
    png = read_png(viz.save_image_grid(images, (4, 4), tmp_path / "g.png"))
    side = 4 * 4 + 3
    k = math.ceil(viz.MIN_SIDE / side)
    assert png.shape[:2] == (k * (3 * 4 + 2), k * side)


def test_save_image_grid_rgb_and_title(tmp_path):
    images = torch.rand(4, 6 * 6 * 3, generator=torch.Generator().manual_seed(2))
    grid = viz.image_grid(images, (6, 6, 3), nrow=2)
    png = read_png(viz.save_image_grid(images, (6, 6, 3), tmp_path / "rgb.png", scale=1))
    np.testing.assert_allclose(png[..., :3], grid, atol=TOL)
    titled = read_png(viz.save_image_grid(images, (6, 6, 3), tmp_path / "t.png", title="x"))
    assert titled.shape[0] > viz._scale(grid, None) * grid.shape[0]  # room for the title


# --- pictures of a model ---------------------------------------------------------------


def test_plot_samples_draws_model_samples_reproducibly_in_eval_mode(tmp_path):
    model = StandIn((8, 8))
    model.train()
    model.encoder.eval()  # a submodule's own mode must survive
    png = read_png(viz.plot_samples(model, tmp_path / "s.png", n=9, seed=3, scale=1))
    assert model.training and model.decoder.training and not model.encoder.training
    assert model.calls[-1][:2] == (False, False)  # eval mode, no grad while drawing
    expected = viz.image_grid(
        model.sample(9, generator=torch.Generator().manual_seed(3)), (8, 8), nrow=3
    )
    assert png.shape[:2] == expected.shape == (26, 26)
    np.testing.assert_allclose(png[..., 0], expected, atol=TOL)
    other = read_png(viz.plot_samples(model, tmp_path / "o.png", n=9, seed=4, scale=1))
    assert np.abs(other - png).max() > 0.1


def test_plot_reconstructions_decodes_posterior_means(tmp_path):
    model = StandIn((6, 6, 3), latent_dim=3)
    x = torch.rand(4, 108, generator=torch.Generator().manual_seed(0))
    path = viz.plot_reconstructions(model, x, tmp_path / "r.png", n=3)
    assert read_png(path).shape[2] == 4
    training, grad, z = model.calls[-1]
    assert not training and not grad
    torch.testing.assert_close(z, model.encode(x[:3]).mean)
    viz.plot_reconstructions(model, x, tmp_path / "all.png", n=10)  # n > B draws all of x
    assert model.calls[-1][2].shape == (4, 3)
    with pytest.raises(ValueError, match=r"expected a non-empty batch \(B, D\)"):
        viz.plot_reconstructions(model, x[0], tmp_path / "bad.png")


def test_manifold_grid_maps_the_open_unit_square_through_the_inverse_cdf():
    n = 5
    z = viz.manifold_grid(StandIn(None, 2, identity=True), n).reshape(n, n, 2).double().numpy()
    v = ppf_axis(n)
    for r in range(n):  # dims[0] rises left to right in every row
        np.testing.assert_allclose(z[r, :, 0], v, atol=1e-6)
    for c in range(n):  # dims[1] falls top to bottom in every column, as in the paper
        np.testing.assert_allclose(z[:, c, 1], v[::-1], atol=1e-6)
    np.testing.assert_allclose(z[n // 2, :, 1], 0.0, atol=1e-6)  # centre row and column at 0
    np.testing.assert_allclose(z[:, n // 2, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(viz.manifold_values(n).numpy(), v, rtol=1e-12)


def test_manifold_grid_is_a_slice_through_base():
    model = StandIn(None, 4, identity=True)
    base = torch.tensor([0.5, -1.0, 2.0, 7.0])
    z = viz.manifold_grid(model, 3, dims=(3, 1), base=base).reshape(3, 3, 4).double().numpy()
    v = ppf_axis(3)
    np.testing.assert_allclose(z[..., 0], 0.5)
    np.testing.assert_allclose(z[..., 2], 2.0)
    np.testing.assert_allclose(z[..., 3], np.tile(v, (3, 1)), atol=1e-6)
    np.testing.assert_allclose(z[..., 1], np.tile(v[::-1, None], (1, 3)), atol=1e-6)
    default = viz.manifold_grid(model, 3, dims=(3, 1)).reshape(3, 3, 4)
    assert (default[..., [0, 2]] == 0).all()  # the prior mean
    assert model.calls[-1][:2] == (False, False)


@pytest.mark.parametrize("dims", [(0, 0), (0, 2), (-1, 0), (1,), (0, 1, 2)])
def test_manifold_rejects_bad_dims(dims, tmp_path):
    model = StandIn((8, 8), 2)
    message = r"dims=.*: expected two distinct latent indices in \[0, 2\)"
    with pytest.raises(ValueError, match=message):
        viz.manifold_grid(model, 3, dims=dims)
    with pytest.raises(ValueError, match=message):
        viz.plot_manifold(model, tmp_path / "m.png", 3, dims=dims)
    assert not (tmp_path / "m.png").exists()


def test_manifold_rejects_bad_base():
    with pytest.raises(ValueError, match=r"base of shape \(3,\): expected \(2,\)"):
        viz.manifold_grid(StandIn((8, 8), 2), 3, base=torch.zeros(3))


@pytest.mark.parametrize(("shape", "channels"), [((8, 8), 4), ((6, 6, 3), 4)])
def test_plot_manifold_writes_a_picture(tmp_path, shape, channels):
    model = StandIn(shape, 3)
    png = read_png(viz.plot_manifold(model, tmp_path / "m.png", 4, dims=(2, 0)))
    assert png.ndim == 3 and png.shape[2] == channels
    side = 4 * shape[0] + 3
    assert min(png.shape[:2]) >= math.ceil(viz.MIN_SIDE / side) * side  # grid + axis labels
    assert model.calls[-1][2].shape == (16, 3)


def test_interpolate_ends_at_decoded_posterior_means():
    model = StandIn((8, 8), 3)
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.rand(64, generator=g), torch.rand(64, generator=g)
    out = viz.interpolate(model, x0, x1, steps=5)
    assert out.shape == (5, 64)
    mu = model.encode(torch.stack([x0, x1])).mean
    torch.testing.assert_close(out[0], model.decode(mu[0]).mean)
    torch.testing.assert_close(out[-1], model.decode(mu[1]).mean)
    z = torch.stack([c[2] for c in model.calls if c[2].shape == (5, 3)])[-1]
    torch.testing.assert_close(z[2], (mu[0] + mu[1]) / 2)  # linear in z
    assert not out.requires_grad


def test_interpolate_rejects_bad_input(tmp_path):
    model = StandIn((8, 8), 2)
    x = torch.rand(64)
    with pytest.raises(ValueError, match="steps=1: expected at least 2"):
        viz.interpolate(model, x, x, steps=1)
    with pytest.raises(ValueError, match=r"expected two vectors of shape \(D,\)"):
        viz.interpolate(model, x[None], x[None])


def test_plot_interpolation_writes_one_row(tmp_path):
    model = StandIn((6, 6, 3), 2)
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.rand(108, generator=g), torch.rand(108, generator=g)
    png = read_png(viz.plot_interpolation(model, x0, x1, tmp_path / "i.png", steps=4, scale=4))
    row_width = 4 * (6 * 6 + 5)  # 6 tiles: x0, 4 steps, x1
    assert png.shape[1] >= row_width and png.shape[0] < row_width / 2


def test_pictures_need_image_data(tmp_path):
    model = StandIn(None, 2, input_dim=5)
    x = torch.rand(3, 5)
    message = "pictures need image data: this model's config has no image_shape"
    for draw in (
        lambda: viz.plot_samples(model, tmp_path / "a.png"),
        lambda: viz.plot_reconstructions(model, x, tmp_path / "a.png"),
        lambda: viz.plot_manifold(model, tmp_path / "a.png"),
        lambda: viz.plot_interpolation(model, x[0], x[1], tmp_path / "a.png"),
    ):
        with pytest.raises(ValueError, match=message):
            draw()
    assert list(tmp_path.iterdir()) == []
    assert viz.manifold_grid(model, 2).shape == (4, 5)  # tensors need no image shape
    assert viz.interpolate(model, x[0], x[1], 3).shape == (3, 5)


# --- training curves -------------------------------------------------------------------


@pytest.fixture
def saved_figures(monkeypatch):
    """Figures passed to Figure.savefig, which still writes them."""
    figures: list[Figure] = []
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return figures


def test_plot_training_curve_draws_each_present_series(tmp_path, saved_figures):
    history = [
        {"examples": 0, "train_bound": -200.0},  # dropped on a log axis
        {"examples": 1e3, "train_bound": -150.0, "valid_bound": float("nan")},
        {"examples": 1e4, "train_bound": -120.0, "valid_bound": -125.0},
        {"examples": 1e5, "valid_bound": -110.0},
    ]
    png = read_png(viz.plot_training_curve(history, tmp_path / "c.png", title="MNIST"))
    assert png.shape == (400, 600, 4)
    ax = saved_figures[-1].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"train", "validation"}
    np.testing.assert_array_equal(lines["train"].get_xdata(), [1e3, 1e4])
    np.testing.assert_array_equal(lines["train"].get_ydata(), [-150.0, -120.0])
    np.testing.assert_array_equal(lines["validation"].get_xdata(), [1e4, 1e5])
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "# training examples seen"
    assert ax.get_ylabel() == "lower bound on log p(x) (nats)"
    assert ax.get_title() == "MNIST"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]

    viz.plot_training_curve(history, tmp_path / "lin.png", log_x=False)
    ax = saved_figures[-1].axes[0]
    assert ax.get_xscale() == "linear"
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [0, 1e3, 1e4])


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "history is empty"),
        ([{"train_bound": -1.0}], "history row 0 has no 'examples' entry"),
        ([{"examples": 10, "test_bound": float("nan")}], "no finite train_bound"),
        ([{"examples": 0, "test_bound": -1.0}], r"at examples > 0 \(log x axis\)"),
    ],
)
def test_plot_training_curve_rejects_bad_history(tmp_path, history, message):
    with pytest.raises(ValueError, match=message):
        viz.plot_training_curve(history, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


# --- failed writes ---------------------------------------------------------------------


def test_failed_grid_write_keeps_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")

    def half_write(fname, *args, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.image, "imsave", half_write)
    with pytest.raises(OSError, match="disk full"):
        viz.save_image_grid(np.zeros((4, 4)), (2, 2), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_failed_figure_write_leaves_nothing(tmp_path, monkeypatch):
    def half_write(self, fname, *args, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", half_write)
    folder = tmp_path / "figures"
    with pytest.raises(OSError, match="disk full"):
        viz.plot_training_curve([{"examples": 1, "train_bound": -1.0}], folder / "c.png")
    with pytest.raises(OSError, match="disk full"):
        viz.plot_manifold(StandIn((8, 8)), folder / "m.png", 3)
    assert list(folder.iterdir()) == []


def test_traversal_varies_one_dimension_per_row():
    from aevb.models import VAE, VAEConfig
    from aevb.viz import traversal

    torch.manual_seed(0)
    model = VAE(
        VAEConfig(
            input_dim=4,
            latent_dim=3,
            hidden=(),
            likelihood="gaussian",
            gaussian_mean="identity",
            gaussian_variance="fixed",
            init="default",
        )
    )
    with torch.no_grad():  # decoder = identity on z (padded): the picture shows z itself
        model.decoder_head.weight.copy_(torch.eye(4, 3))
        model.decoder_head.bias.zero_()
    x = torch.rand(4)
    mu = model.encode(x[None]).mean[0]
    out = traversal(model, x, dims=[2, 0], n=5, span=2.0)
    assert out.shape == (10, 4)
    torch.testing.assert_close(out[:5, 2], torch.linspace(-2, 2, 5))
    torch.testing.assert_close(out[:5, :2], mu[:2].expand(5, 2))
    torch.testing.assert_close(out[5:, 0], torch.linspace(-2, 2, 5))
    with pytest.raises(ValueError, match="dims: 3 is not a latent dimension"):
        traversal(model, x, dims=[3])


def test_every_picture_of_a_top_down_hierarchy_works_on_its_top_layer(tmp_path):
    """A top-down model's code is z_L (here 2-D): manifold, traversal, interpolation,
    reconstructions and samples all draw from it."""
    from aevb.models import VAE, VAEConfig

    torch.manual_seed(0)
    cfg = VAEConfig(
        input_dim=16, latent_dim=5, upper_latents=(2,), upper_hidden=(6,), hidden=(8,),
        hierarchy="top-down", image_shape=(4, 4), init="default",
    )  # fmt: skip
    model = VAE(cfg)
    x = torch.rand(3, 16).round()
    assert cfg.code_dim == viz.code_dim(model) == 2
    grid = viz.manifold_grid(model, 3)
    top = viz.manifold_values(3)
    corner = torch.stack([top[0], top[-1]])[None].float()  # row 0, column 0
    with torch.no_grad():
        torch.testing.assert_close(grid[0], model.decode(corner).mean[0], atol=1e-6, rtol=0)
    assert viz.traversal(model, x[0], n=4).shape == (8, 16)
    assert viz.interpolate(model, x[0], x[1], steps=4).shape == (4, 16)
    for draw in (viz.plot_manifold, viz.plot_samples):
        assert draw(model, tmp_path / f"{draw.__name__}.png", 3).is_file()
    assert viz.plot_reconstructions(model, x, tmp_path / "r.png").is_file()
