import pytest
import torch

from cin_style.config import StyleNetConfig
from cin_style.nn.stylenet import ConditionalInstanceNorm2d, StyleNet, one_hot_weights


@pytest.mark.parametrize("h,w", [(16, 16), (17, 23), (31, 16), (33, 45), (21, 20)])
def test_output_has_input_size_and_range(tiny_model, h, w):
    x = torch.rand(2, 3, h, w)
    out = tiny_model(x, one_hot_weights(torch.tensor([0, 2]), 3))
    assert out.shape == (2, 3, h, w)
    assert out.min() >= 0 and out.max() <= 1
    assert out.std() > 1e-3 and not torch.allclose(out[0], out[1])  # an image, not a constant


def test_one_hot_rows_select_single_styles_per_sample(tiny_model):
    x = torch.rand(3, 3, 20, 28)
    batch = tiny_model(x, one_hot_weights(torch.tensor([0, 1, 2]), 3))
    for i in range(3):
        alone = tiny_model(x[i:i + 1], one_hot_weights(torch.tensor([i]), 3))
        torch.testing.assert_close(batch[i:i + 1], alone, rtol=0, atol=1e-5)
    # different styles really give different images
    assert (batch[0] - tiny_model(x[:1], one_hot_weights(torch.tensor([1]), 3))).abs().max() > 1e-3


def test_half_blend_equals_model_with_averaged_gamma_beta(tiny_model):
    x = torch.rand(1, 3, 19, 24)
    blended = tiny_model(x, torch.tensor([[0.5, 0.5, 0.0]]))
    averaged = StyleNet(StyleNetConfig(num_styles=1, base_width=4, num_residual_blocks=1))
    state = tiny_model.state_dict()
    for key, value in state.items():
        if key.endswith((".gamma", ".beta")):
            state[key] = value[:2].mean(dim=0, keepdim=True)
    averaged.load_state_dict(state)
    torch.testing.assert_close(blended, averaged(x, torch.ones(1, 1)), rtol=0, atol=1e-6)


def test_gradients_reach_only_selected_style_rows(tiny_model):
    tiny_model.train()
    x = torch.rand(2, 3, 16, 16)
    out = tiny_model(x, one_hot_weights(torch.tensor([1, 1]), 3))
    out.square().mean().backward()
    for norm in tiny_model.cin_layers():
        for param in (norm.gamma, norm.beta):
            assert torch.count_nonzero(param.grad[[0, 2]]) == 0
            assert torch.count_nonzero(param.grad[1]) > 0
    assert tiny_model.head.conv.weight.grad.abs().sum() > 0


def test_cin_applies_weighted_gamma_beta_after_plain_instance_norm():
    norm = ConditionalInstanceNorm2d(2, 3)
    with torch.no_grad():
        norm.gamma.copy_(torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
        norm.beta.copy_(torch.tensor([[0.0, 1.0, 0.0], [2.0, 1.0, 0.0]]))
    x = torch.randn(1, 3, 5, 5)
    out = norm(x, torch.tensor([[0.25, 0.75]]))
    normalized = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), unbiased=False, keepdim=True) + 1e-5)
    gamma = torch.tensor([2.5, 2.0, 1.5]).view(1, 3, 1, 1)
    beta = torch.tensor([1.5, 1.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, normalized * gamma + beta, rtol=1e-5, atol=1e-5)


def test_add_styles_grows_rows_and_keeps_old_ones(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    tiny_model.add_styles(2)
    assert tiny_model.num_styles == 5 and tiny_model.config.num_styles == 5
    for key, value in tiny_model.state_dict().items():
        if key.endswith((".gamma", ".beta")):
            assert value.shape[0] == 5
            assert torch.equal(value[:3], before[key])
        else:
            assert torch.equal(value, before[key])


@pytest.mark.parametrize("image,weights,match", [
    (torch.rand(1, 4, 16, 16), torch.ones(1, 3) / 3, r"\[N, 3, H, W\]"),
    (torch.rand(1, 3, 16, 16), torch.ones(1, 2), r"\[N, 3\]"),
])
def test_wrong_shapes_give_readable_errors(tiny_model, image, weights, match):
    with pytest.raises(ValueError, match=match):
        tiny_model(image, weights)


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        StyleNetConfig(num_styles=0)
    with pytest.raises(ValueError):
        StyleNetConfig(num_styles=2, outer_kernel=4)
