"""read_image: every image mode loads like its 8-bit RGB equivalent (issue 13, item 3)."""

import numpy as np
import pytest
from PIL import Image

from graftlab.data import load_image_folder
from graftlab.data.images import ImageProblem, image_size, read_image

# An 8-bit greyscale ramp that uses the whole 0..255 range (min 0, max 255), 6 x 8 pixels.
GREY = np.linspace(0, 255, 48).round().astype(np.uint8).reshape(6, 8)
RGB = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)


def _grey_rgb(grey):
    return np.repeat(grey[..., None], 3, axis=-1)


def _save(path, array_or_image, **kw):
    img = array_or_image if isinstance(array_or_image, Image.Image) else \
        Image.fromarray(array_or_image)
    img.save(path, **kw)
    return path


@pytest.mark.parametrize(("suffix", "array", "mode"), [
    (".png", GREY.astype(np.uint16) * 257, "I;16"),
    (".tif", (GREY.astype(np.uint16) * 257).astype(">u2"), "I;16B"),
    (".tif", GREY.astype(np.int32) * 257, "I"),
    (".tif", GREY.astype(np.int32) - 70_000, "I"),  # beyond 16 bits: min-max stretch
    (".tif", GREY.astype(np.float32) / 255, "F"),  # floats in [0, 1]
    (".tif", GREY.astype(np.float32), "F"),  # whole numbers in 0..255
    (".tif", GREY.astype(np.float32) * 0.01 - 3.3, "F"),  # any other range: min-max stretch
])
def test_wide_greyscale_matches_its_8bit_equivalent(tmp_path, suffix, array, mode):
    path = _save(tmp_path / f"x{suffix}", array)
    assert Image.open(path).mode == mode
    np.testing.assert_array_equal(read_image(path), _grey_rgb(GREY))


def test_16bit_png_is_not_clipped_white(tmp_path):
    """The reported bug: convert("RGB") put 99.6% of a 16-bit PNG's pixels at 255."""
    ramp = np.linspace(0, 65535, 64 * 64).astype(np.uint16).reshape(64, 64)
    image = read_image(_save(tmp_path / "ramp.png", ramp))
    assert (image == 255).mean() < 0.01
    assert abs(float(image.mean()) - 127.5) < 1


def test_dark_16bit_image_stays_dark(tmp_path):
    """Scaled by the type's range, not stretched per image: 12-bit data loads dark."""
    dark = (GREY.astype(np.uint16) * 16)  # 0..4080
    image = read_image(_save(tmp_path / "dark.png", dark))
    assert image.max() == 16  # 4080 / 257, rounded


def test_float_nan_loads_black(tmp_path):
    values = GREY.astype(np.float32) / 255
    values[0, 0] = np.nan
    image = read_image(_save(tmp_path / "nan.tif", values))
    assert (image[0, 0] == 0).all()
    np.testing.assert_array_equal(image[1:], _grey_rgb(GREY)[1:])


def test_palette_with_transparency_matches_rgba(tmp_path):
    palette_image = Image.fromarray(GREY // 32).convert("P")  # indices 0..7
    palette_image.putpalette([v for i in range(8) for v in (i * 30, 200 - i * 20, 7)])
    path = _save(tmp_path / "p.png", palette_image, transparency=3)
    loaded = read_image(path)
    expected = np.asarray(palette_image.convert("RGB")).copy()
    expected[GREY // 32 == 3] = 255  # the transparent index shows the white background
    np.testing.assert_array_equal(loaded, expected)
    gif = read_image(_save(tmp_path / "p.gif", palette_image, transparency=3))
    np.testing.assert_array_equal(gif, expected)


def test_rgba_composites_on_white(tmp_path):
    alpha = np.linspace(0, 255, 48).round().astype(np.uint8).reshape(6, 8)
    rgba = np.dstack([RGB, alpha])
    loaded = read_image(_save(tmp_path / "a.png", rgba)).astype(int)
    a = alpha[..., None] / 255
    expected = np.rint(RGB * a + 255 * (1 - a))
    assert np.abs(loaded - expected).max() <= 1
    assert (loaded[0, 0] == 255).all()  # fully transparent: white
    np.testing.assert_array_equal(loaded[-1, -1], RGB[-1, -1])  # opaque: unchanged


def test_opaque_alpha_modes_equal_their_8bit_equivalents(tmp_path):
    opaque = np.full(GREY.shape, 255, np.uint8)
    rgba = read_image(_save(tmp_path / "rgba.png", np.dstack([RGB, opaque])))
    np.testing.assert_array_equal(rgba, RGB)
    la = read_image(_save(tmp_path / "la.png", Image.fromarray(np.dstack([GREY, opaque]), "LA")))
    np.testing.assert_array_equal(la, _grey_rgb(GREY))


def test_greyscale_with_a_transparent_value(tmp_path):
    loaded = read_image(_save(tmp_path / "t.png", GREY, transparency=int(GREY[2, 3])))
    expected = _grey_rgb(GREY).copy()
    expected[GREY == GREY[2, 3]] = 255
    np.testing.assert_array_equal(loaded, expected)


def test_cmyk_matches_rgb(tmp_path):
    cmyk = Image.fromarray(RGB).convert("CMYK")
    np.testing.assert_array_equal(read_image(_save(tmp_path / "c.tif", cmyk)), RGB)
    flat = np.zeros((16, 16, 3), np.uint8) + np.array([200, 40, 90], np.uint8)
    jpeg = _save(tmp_path / "c.jpg", Image.fromarray(flat).convert("CMYK"), quality=100)
    assert Image.open(jpeg).mode == "CMYK"
    assert np.abs(read_image(jpeg).astype(int) - flat).max() <= 3


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path / "o.png", RGB, exif=exif.tobytes())
    upright = np.rot90(RGB, turn)
    np.testing.assert_array_equal(read_image(path), upright)
    assert image_size(path) == upright.shape[:2]


def test_rotated_jpeg_in_a_folder_loads_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        _save(tmp_path / "d" / cls / "plain.jpg", np.zeros((8, 6, 3), np.uint8), quality=95)
    wide = np.zeros((6, 8, 3), np.uint8)
    wide[:, :4] = 255  # left half white; turned upright (90 degrees clockwise): top half
    _save(tmp_path / "d" / "a" / "turned.jpg", wide, exif=exif.tobytes(), quality=95)
    d = load_image_folder(tmp_path / "d")
    assert d.inputs.shape == (3, 8, 6, 3)  # one shared (upright) size, not resized to 224
    turned = d.inputs[d.meta["files"].index(str(tmp_path / "d" / "a" / "turned.jpg"))]
    assert turned[:3].mean() > 200 and turned[5:].mean() < 50


def test_unreadable_and_too_large_raise_image_problem(tmp_path, monkeypatch):
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ImageProblem, match="not an image") as err:
        read_image(tmp_path / "junk.png")
    assert not err.value.too_large
    big = _save(tmp_path / "big.png", np.zeros((20, 20), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    for read in (read_image, image_size):
        with pytest.raises(ImageProblem, match="400 pixels") as err:
            read(big)
        assert err.value.too_large and err.value.pixels == 400

