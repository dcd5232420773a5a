import numpy as np
import pytest

from cin_style.blend.weights import (
    BlendError,
    blend_weights,
    check_weight_matrix,
    format_blend,
    parse_style_spec,
    weight_matrix,
    weights_from_specs,
)

NAMES = ["starry", "wave", "mosaic"]


def test_parse_spec_forms():
    assert parse_style_spec("starry=0.7, wave=0.3") == [("starry", 0.7), ("wave", 0.3)]
    assert parse_style_spec("mosaic") == [("mosaic", 1.0)]
    with pytest.raises(BlendError, match="not a number"):
        parse_style_spec("starry=lots")


def test_names_and_indices_normalised_to_one():
    w = weights_from_specs(["starry=3", "2=1"], NAMES)
    np.testing.assert_allclose(w, [0.75, 0.0, 0.25])
    assert w.dtype == np.float32
    np.testing.assert_allclose(weights_from_specs(["wave=2"], NAMES, normalize=False), [0, 2, 0])


def test_unknown_name_lists_valid_styles():
    with pytest.raises(BlendError, match="unknown style 'vangogh'; valid styles: starry, wave, mosaic"):
        weights_from_specs(["vangogh=1"], NAMES)
    with pytest.raises(BlendError, match="out of range"):
        weights_from_specs(["7=1"], NAMES)


@pytest.mark.parametrize("spec,match", [("starry=-1", "negative"), ("starry=nan", "finite"),
                                        ("starry=inf", "finite"), ("starry=0", "sum to 0")])
def test_bad_weights_rejected(spec, match):
    with pytest.raises(BlendError, match=match):
        weights_from_specs([spec], NAMES)


def test_repeated_styles_add_up_and_format_round_trips():
    w = blend_weights([("wave", 1), ("wave", 1), ("starry", 2)], NAMES)
    np.testing.assert_allclose(w, [0.5, 0.5, 0])
    assert format_blend(w, NAMES) == "starry=0.5,wave=0.5"


def test_weight_matrix_checks():
    assert check_weight_matrix(np.array([1, 0, 0]), 3, 2).shape == (2, 3)
    with pytest.raises(BlendError, match=r"\[2, 3\]"):
        check_weight_matrix(np.ones((2, 2)), 3, 2)
    with pytest.raises(BlendError, match="NaN"):
        check_weight_matrix(np.array([[np.nan, 0, 1]]), 3, 1)


def test_one_grammar_for_weighted_names_and_path_assignments(tmp_path):
    from pathlib import Path

    from cin_style.blend.specs import SpecError, parse_weighted_names, split_name_path, split_path_weight

    assert parse_weighted_names("relu1_2:2, relu3_3", ":", "layer") == [("relu1_2", 2.0), ("relu3_3", 1.0)]
    with pytest.raises(SpecError, match="layer 'relu1_2'"):
        parse_weighted_names("relu1_2:big", ":", "layer")
    with pytest.raises(SpecError, match="empty"):
        parse_weighted_names(" , ", ":", "layer")
    odd = tmp_path / "a=b.jpg"
    odd.write_bytes(b"")
    assert split_path_weight(str(odd)) == (odd, 1.0)  # an existing file is taken whole
    assert split_path_weight("wave.jpg=0.25") == (Path("wave.jpg"), 0.25)
    assert split_name_path("wave=paintings/w.jpg") == ("wave", Path("paintings/w.jpg"))
    assert split_name_path(str(odd)) == (None, odd)


def test_weight_matrix_accepts_every_documented_form_alike():
    import torch

    from cin_style.blend.weights import weight_matrix

    expected = np.array([[0.75, 0.0, 0.25]] * 2, np.float32)
    forms = ["starry=3,mosaic=1", ["starry=3", "mosaic=1"], {"starry": 3, "mosaic": 1},
             [3.0, 0.0, 1.0], np.array([[3, 0, 1], [6, 0, 2]]), torch.tensor([3.0, 0.0, 1.0])]
    for form in forms:
        got = weight_matrix(form, NAMES, 2)
        assert got.dtype == np.float32 and got.shape == (2, 3), form
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=repr(form))
    np.testing.assert_array_equal(weight_matrix(1, NAMES, 1), [[0, 1, 0]])  # a style index
    np.testing.assert_array_equal(weight_matrix([3.0, 0.0, 1.0], NAMES, 1, normalize=False), [[3, 0, 1]])
    with pytest.raises(BlendError, match="sum to 0"):
        weight_matrix([0.0, 0.0, 0.0], NAMES, 1)


@pytest.mark.parametrize("spec", ["a=1e308,b=1e308", "a=1e308,a=1e308", "a=3e38,b=3e38", "a=1e39"])
def test_weights_that_overflow_are_refused_not_zeroed(spec):
    """An infinite sum once made every weight 0: a flat grey image with exit 0."""
    with pytest.raises(BlendError, match="too large"):
        weights_from_specs([spec], ["a", "b"])
    with pytest.raises(BlendError, match="too large|infinity"):
        weight_matrix(np.array([3e38, 3e38], np.float32) if "3e38" in spec else np.array([1e39, 1.0]), ["a", "b"], 1)
    assert np.allclose(weights_from_specs(["a=1e30,b=3e30"], ["a", "b"]), [0.25, 0.75])  # large but fine
