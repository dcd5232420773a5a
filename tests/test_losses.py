import pytest
import torch

from cin_style.config import LossConfig
from cin_style.losses.perceptual import PerceptualLoss, content_loss, gram_matrix, style_loss, total_variation


def test_gram_matrix_exact_values():
    # two channels, 1x2 pixels: f1 = [1, 2], f2 = [3, 4]; normalised by C*H*W = 4
    feats = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    torch.testing.assert_close(gram_matrix(feats), expected)


def test_gram_matrix_shape_check():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        gram_matrix(torch.zeros(3, 4))


def test_total_variation_exact_values():
    assert total_variation(torch.full((2, 3, 7, 5), 0.3)).item() == 0.0
    stripes = torch.tensor([[[[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]])  # every horizontal step is 1
    assert total_variation(stripes).item() == pytest.approx(1.0)
    ramp = torch.tensor([[[[0.0], [0.5], [1.0]]]])  # vertical steps of 0.5, no horizontal ones
    assert total_variation(ramp).item() == pytest.approx(0.5)


def test_content_loss_is_mse_and_checks_shapes():
    a, b = torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2, 2), 2.0)
    assert content_loss(a, b).item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="differ in shape"):
        content_loss(a, torch.zeros(1, 2, 3, 3))


def test_style_loss_exact_value_with_layer_weights():
    feats = {"a": torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]]), "b": torch.ones(1, 1, 2, 2)}
    targets = {"a": torch.zeros(2, 2), "b": torch.ones(1, 1)}
    # a: mean of (G**2) = (25 + 121 + 121 + 625) / 16 / 4 ; b: G = 1 = target → 0
    expected = 0.5 * ((5 / 4) ** 2 + 2 * (11 / 4) ** 2 + (25 / 4) ** 2) / 4
    value = style_loss(feats, targets, {"a": 0.5, "b": 3.0})
    assert value.item() == pytest.approx(expected)


def test_style_loss_of_image_with_itself_is_zero(encoder):
    image = torch.rand(2, 3, 24, 24)
    feats = encoder(image)
    targets = {name: gram_matrix(f) for name, f in feats.items()}
    assert style_loss(feats, targets).item() == 0.0
    other = encoder(torch.rand(2, 3, 24, 24))
    assert style_loss(other, targets).item() > 0


def test_perceptual_loss_parts_are_weighted_and_sum_to_total(encoder):
    config = LossConfig(content_layers={"relu2_2": 1.0}, style_layers={"relu1_2": 1.0},
                        content_weight=2.0, style_weight=10.0, tv_weight=0.5)
    loss = PerceptualLoss(encoder, config)
    content, output = torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20)
    style = torch.rand(3, 24, 24)
    grams = loss.style_targets([style])
    total, parts = loss(output, content, grams)
    feats = encoder(torch.cat([output, content]))
    assert parts["content"].item() == pytest.approx(
        2.0 * content_loss(feats["relu2_2"][:1], feats["relu2_2"][1:]).item(), rel=1e-5)
    assert parts["tv"].item() == pytest.approx(0.5 * total_variation(output).item(), rel=1e-6)
    assert total.item() == pytest.approx(sum(p.item() for p in parts.values()), rel=1e-6)
    # the content image scored against its own features has no content loss
    _, same = loss(content, content, grams)
    assert same["content"].item() == 0.0


def test_perceptual_loss_rejects_layers_the_encoder_lacks(encoder):
    with pytest.raises(ValueError, match="relu4_3"):
        PerceptualLoss(encoder, LossConfig(style_layers={"relu4_3": 1.0}))


def test_loss_config_validates_itself_and_configs_are_frozen():
    import dataclasses

    from cin_style.config import OptimizeConfig, TrainConfig
    from cin_style.errors import ConfigError

    for bad in (dict(style_weight=-1.0), dict(tv_weight=float("nan")), dict(content_layers={}),
                dict(style_layers={"relu1_2": -2.0}), dict(encoder="resnet")):
        with pytest.raises(ConfigError):
            LossConfig(**bad)
    with pytest.raises(ConfigError, match="style weight"):  # optimize used to accept it
        OptimizeConfig(loss=LossConfig(encoder="vgg19", style_weight=-5.0))
    config = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 10
    assert dataclasses.replace(config, steps=10).steps == 10
    assert TrainConfig.from_dict(config.to_dict()) == config  # round trip, nested loss too
