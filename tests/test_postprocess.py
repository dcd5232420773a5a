import numpy as np
import pytest
import torch

from cin_style.config import StyleNetConfig
from cin_style.infer.finish import _RGB_TO_YCC, mix_strength, preserve_color
from cin_style.nn.stylenet import StyleNet


def test_preserve_color_takes_luma_from_stylized_and_chroma_from_content():
    rng = np.random.default_rng(0)
    content = rng.uniform(0.3, 0.7, (6, 5, 3)).astype(np.float32)
    stylized = rng.uniform(0.3, 0.7, (6, 5, 3)).astype(np.float32)
    out = preserve_color(stylized, content)
    ycc_out, ycc_content = out @ _RGB_TO_YCC.T, content @ _RGB_TO_YCC.T
    np.testing.assert_allclose(ycc_out[..., 0], stylized @ _RGB_TO_YCC[0], atol=1e-5)
    np.testing.assert_allclose(ycc_out[..., 1:], ycc_content[..., 1:], atol=1e-5)
    np.testing.assert_allclose(preserve_color(content, content), content, atol=1e-5)


def test_strength_mixes_linearly():
    a, b = np.zeros((4, 4, 3), np.float32), np.ones((4, 4, 3), np.float32)
    np.testing.assert_allclose(mix_strength(a, b, 0.0), b)
    np.testing.assert_allclose(mix_strength(a, b, 1.0), a)
    np.testing.assert_allclose(mix_strength(a, b, 0.25), np.full((4, 4, 3), 0.75))
    with pytest.raises(ValueError, match="between 0 and 1"):
        mix_strength(a, b, 1.5)


def test_flops_formula_matches_conv_hooks():
    model = StyleNet(StyleNetConfig(num_styles=2, base_width=4, num_residual_blocks=2))
    counted = []

    def hook(module, inputs, output):
        cout, cin, kh, kw = module.weight.shape
        counted.append(2 * cin * cout * kh * kw * output.shape[2] * output.shape[3])

    for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]:
        conv.register_forward_hook(hook)
    model(torch.rand(1, 3, 37, 22), torch.ones(1, 2) / 2)
    assert model.flops(37, 22) == sum(counted)
