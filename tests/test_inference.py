"""stylize_files / blend_for: the per-file loop the CLI prints, as a library API."""

import numpy as np
import pytest
import torch
from conftest import make_tiny_model, write_image
from PIL import Image

from cin_style.errors import UsageError
from cin_style.infer.files import output_paths, stylize_files
from cin_style.infer.stylizer import blend_for
from cin_style.infer.torch_stylizer import TorchStylizer
from cin_style.nn.checkpoint import make_checkpoint


@pytest.fixture
def stylizer(tmp_path):
    path = tmp_path / "m.pt"
    torch.save(make_checkpoint(make_tiny_model(), ["a", "b", "c"]), path)
    return TorchStylizer(path, device="cpu")


def test_each_file_fails_alone_and_strength_zero_returns_the_photo(stylizer, tmp_path):
    good = write_image(tmp_path / "in" / "good.png", seed=1, size=(33, 27))
    bad = tmp_path / "in" / "bad.jpg"
    bad.write_bytes(b"junk")
    tiny = write_image(tmp_path / "in" / "tiny.png", seed=2, size=(9, 9))
    inputs = [bad, good, tiny]
    targets = output_paths(inputs, tmp_path / "out")
    weights, label = blend_for(stylizer, ["b=1,c=3"])
    assert label == "b=0.25,c=0.75"
    results = list(stylize_files(stylizer, inputs, targets, weights, strength=0.0))
    assert [r.error is None for r in results] == [False, True, False]
    assert "too small" in results[2].error and results[1].size == (33, 27)
    written = np.asarray(Image.open(results[1].output))
    assert np.array_equal(written, np.asarray(Image.open(good)))  # strength 0: the photo itself
    assert not targets[0].exists() and not targets[2].exists()


def test_output_paths_and_defaults(stylizer, tmp_path):
    photo = write_image(tmp_path / "p.png", seed=3)
    assert output_paths([photo], tmp_path / "x.jpg") == [tmp_path / "x.jpg"]
    assert output_paths([photo], tmp_path / "outdir", "webp") == [tmp_path / "outdir" / "p.webp"]
    with pytest.raises(UsageError, match="output folder"):
        output_paths([photo, photo], tmp_path / "x.jpg")
    weights, label = blend_for(stylizer)
    assert label == "a=1" and weights.tolist() == [1.0, 0.0, 0.0]
