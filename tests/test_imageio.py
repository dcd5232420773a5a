import numpy as np
import pytest
from PIL import Image

from cin_style.io import image as imageio
from cin_style.io.image import ImageError, load_image, save_image


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((10, 20, 3), np.uint8)
    array[:, :10] = (255, 0, 0)  # left half red, right half blue
    array[:, 10:] = (0, 0, 255)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=100)
    loaded = load_image(path)
    assert loaded.shape == (20, 10, 3)
    assert loaded[2, 5, 0] > 0.9 and loaded[2, 5, 2] < 0.1  # red now on top
    assert loaded[17, 5, 2] > 0.9 and loaded[17, 5, 0] < 0.1  # blue at the bottom


def test_rgba_is_composited_over_white(tmp_path):
    array = np.zeros((2, 2, 4), np.uint8)
    array[0, 0] = (255, 0, 0, 255)  # opaque red
    array[0, 1] = (255, 0, 0, 0)  # transparent
    array[1, 0] = (0, 0, 0, 128)  # half-transparent black
    path = tmp_path / "rgba.png"
    Image.fromarray(array, "RGBA").save(path)
    loaded = load_image(path)
    np.testing.assert_allclose(loaded[0, 0], [1, 0, 0])
    np.testing.assert_allclose(loaded[0, 1], [1, 1, 1])
    np.testing.assert_allclose(loaded[1, 0], [127 / 255] * 3, atol=1 / 255)


@pytest.mark.parametrize("mode", ["LA", "P", "L", "1"])
def test_other_modes_become_rgb(tmp_path, mode):
    path = tmp_path / f"img_{mode}.png"
    Image.new("RGB", (8, 6), (200, 100, 50)).convert(mode).save(path)
    loaded = load_image(path)
    assert loaded.shape == (6, 8, 3) and loaded.dtype == np.float32
    assert loaded.min() >= 0 and loaded.max() <= 1


def test_palette_transparency_composited(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.info["transparency"] = 0
    path = tmp_path / "p.png"
    image.save(path, transparency=0)
    np.testing.assert_allclose(load_image(path)[0, 0], [1, 1, 1])


def test_16_bit_is_scaled_not_clipped(tmp_path):
    array = np.array([[0, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    image = Image.fromarray(array)
    assert image.mode == "I;16"
    image.save(path)
    loaded = load_image(path)
    np.testing.assert_allclose(loaded[0, :, 0], [0, 32768 / 65535, 1], atol=1e-6)


def test_decompression_bomb_is_refused_with_override_hint(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(ImageError, match="--max-pixels"):
        load_image(path, max_pixels=5000)
    assert load_image(path, max_pixels=10_000).shape == (100, 100, 3)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard is left in place


def test_corrupt_and_missing_files_raise_one_line_errors(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="cannot read image"):
        load_image(bad)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")


def test_max_size_downscales_long_side(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (200, 100), (10, 20, 30)).save(path)
    assert load_image(path, max_size=50).shape == (25, 50, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_save_by_extension_round_trips(tmp_path, suffix):
    array = np.random.default_rng(0).random((12, 16, 3)).astype(np.float32)
    path = save_image(tmp_path / f"out{suffix}", array)
    back = load_image(path)
    assert back.shape == (12, 16, 3)
    if suffix == ".png":
        np.testing.assert_allclose(back, np.round(array * 255) / 255, atol=1 / 255 + 1e-6)


def test_save_rejects_unknown_type_and_nan(tmp_path):
    with pytest.raises(ImageError, match="unsupported output type"):
        save_image(tmp_path / "out.gif", np.zeros((4, 4, 3)))
    with pytest.raises(ImageError, match="NaN"):
        save_image(tmp_path / "out.png", np.full((4, 4, 3), np.nan))
    assert not (tmp_path / "out.png").exists()


def test_failed_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = save_image(tmp_path / "keep.png", np.zeros((4, 4, 3)))
    before = target.read_bytes()

    def boom(self, fh, *args, **kwargs):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError):
        save_image(target, np.ones((4, 4, 3)))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_list_images_recursive_and_filtered(tmp_path):
    for name in ["a.jpg", "sub/b.PNG", "sub/c.webp", "notes.txt", ".hidden/d.jpg"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in imageio.list_images(tmp_path)] == [
        "a.jpg", "sub/b.PNG", "sub/c.webp"]
