"""ResNet-50 v2 in the TF-slim layout: shapes, SAME padding, stride placement, counts, TF names."""

import pytest
import torch
from torch.nn import functional

from lightning_hmd.models.resnet_v2 import (
    BLOCK_UNITS,
    BottleneckV2,
    ResNetV2,
    load_slim_weights,
    max_pool_same,
    same_padding,
)


@pytest.fixture(scope="module")
def tiny_resnet() -> ResNetV2:
    torch.manual_seed(0)
    return ResNetV2(base_width=2).eval()


def test_tiny_output_shape_and_maps(tiny_resnet):
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    maps = tiny_resnet.forward_maps(images)
    sizes = {name: tuple(m.shape[1:]) for name, m in maps.items()}
    assert sizes == {
        "conv1": (64, 32, 32),  # slim's root is 64 wide at any block width
        "pool1": (64, 16, 16),
        "block1": (8, 8, 8),
        "block2": (16, 4, 4),
        "block3": (32, 2, 2),
        "block4": (64, 2, 2),
        "postnorm": (64, 2, 2),
    }
    assert tiny_resnet(images).shape == (2, 64)
    assert tiny_resnet.out_dim == 64


def test_full_width_224_spatial_sizes_on_meta():
    with torch.device("meta"):
        net = ResNetV2()
        maps = net.forward_maps(torch.empty(1, 3, 224, 224))
        phi = net(torch.empty(1, 3, 224, 224))
    shapes = {name: tuple(m.shape[1:]) for name, m in maps.items()}
    assert shapes == {
        "conv1": (64, 112, 112),
        "pool1": (64, 56, 56),
        "block1": (256, 28, 28),
        "block2": (512, 14, 14),
        "block3": (1024, 7, 7),
        "block4": (2048, 7, 7),
        "postnorm": (2048, 7, 7),
    }
    assert phi.shape == (1, 2048)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [(112, 3, 2, (0, 1)), (113, 3, 2, (1, 1)), (7, 3, 1, (1, 1)), (28, 1, 2, (0, 0))],
)
def test_same_padding_matches_tf(size, kernel, stride, pads):
    assert same_padding(size, kernel, stride) == pads


@pytest.mark.parametrize("size", [8, 9])
def test_max_pool_same_matches_window_definition(size):
    x = torch.randn(1, 2, size, size)
    out = max_pool_same(x, 3, 2)
    begin, _ = same_padding(size, 3, 2)
    expected = torch.empty(1, 2, -(-size // 2), -(-size // 2))
    for i in range(expected.shape[2]):
        for j in range(expected.shape[3]):
            r0, c0 = max(2 * i - begin, 0), max(2 * j - begin, 0)
            window = x[:, :, r0 : 2 * i - begin + 3, c0 : 2 * j - begin + 3]
            expected[:, :, i, j] = window.amax(dim=(2, 3))
    assert torch.equal(out, expected)


def test_even_input_pool_pads_at_the_end():
    """TF SAME pads the extra row/column at the end; PyTorch's symmetric padding would differ."""
    x = torch.randn(1, 1, 8, 8)
    symmetric = functional.max_pool2d(x, 3, 2, padding=1)
    assert not torch.equal(max_pool_same(x), symmetric)


def test_stride_sits_in_last_unit_of_each_block(tiny_resnet):
    expected_last = (2, 2, 2, 1)
    for block, units, last_stride in zip(
        tiny_resnet.blocks, BLOCK_UNITS, expected_last, strict=True
    ):
        assert len(block) == units
        strides = [unit.conv2.conv.stride for unit in block]
        assert strides == [(1, 1)] * (units - 1) + [(last_stride, last_stride)]
        assert all(unit.conv1.conv.stride == (1, 1) for unit in block)
        # the shortcut is a conv only where the depth changes (first unit of each block)
        assert [unit.shortcut is not None for unit in block] == [True] + [False] * (units - 1)


def test_identity_shortcut_subsamples():
    unit = BottleneckV2(8, 8, 2, stride=2).eval()
    for module in (unit.conv3,):
        torch.nn.init.zeros_(module.weight)
        torch.nn.init.zeros_(module.bias)
    x = torch.randn(1, 8, 5, 5)
    assert torch.equal(unit(x), x[:, :, ::2, ::2])


def _resnet50_v2_parameter_count(w: int = 64) -> int:
    """Count by hand: root conv (with bias), units, postnorm BN (gamma, beta)."""
    total = 7 * 7 * 3 * w + w  # conv1
    in_ch = w
    for index, units in enumerate(BLOCK_UNITS):
        b = w * 2**index
        d = 4 * b
        for _ in range(units):
            total += 2 * in_ch  # preact BN
            if in_ch != d:
                total += in_ch * d + d  # 1x1 shortcut conv with bias
            total += in_ch * b + 2 * b  # conv1 1x1 + BN
            total += 9 * b * b + 2 * b  # conv2 3x3 + BN
            total += b * d + d  # conv3 1x1 with bias
            in_ch = d
    return total + 2 * in_ch  # postnorm


def test_parameter_count_resnet50_v2():
    with torch.device("meta"):
        net = ResNetV2()
    count = sum(p.numel() for p in net.parameters())
    assert count == _resnet50_v2_parameter_count() == 23_519_360


def test_slim_variable_names(tiny_resnet):
    names = tiny_resnet.slim_variable_names()
    keys = [k for k in tiny_resnet.state_dict() if not k.endswith("num_batches_tracked")]
    assert sorted(names) == sorted(keys)
    assert len(set(names.values())) == len(names)
    unit = "resnet_v2_50/block1/unit_1/bottleneck_v2"
    assert names["conv1.weight"] == "resnet_v2_50/conv1/weights"
    assert names["conv1.bias"] == "resnet_v2_50/conv1/biases"
    assert names["block1.unit_1.conv1.conv.weight"] == f"{unit}/conv1/weights"
    assert names["block1.unit_1.conv2.bn.running_var"] == f"{unit}/conv2/BatchNorm/moving_variance"
    assert names["block1.unit_1.preact.weight"] == f"{unit}/preact/gamma"
    assert names["block1.unit_1.shortcut.bias"] == f"{unit}/shortcut/biases"
    assert (
        names["block4.unit_3.conv3.weight"]
        == "resnet_v2_50/block4/unit_3/bottleneck_v2/conv3/weights"
    )
    assert names["postnorm.running_mean"] == "resnet_v2_50/postnorm/moving_mean"


def test_load_slim_weights_round_trip(tiny_resnet):
    state = tiny_resnet.state_dict()
    tf_vars = {}
    for key, tf_name in tiny_resnet.slim_variable_names().items():
        value = state[key]
        tf_vars[tf_name] = value.permute(2, 3, 1, 0) if value.ndim == 4 else value  # OIHW -> HWIO
    other = ResNetV2(base_width=2).eval()
    load_slim_weights(other, tf_vars)
    images = torch.rand(1, 3, 32, 32)
    assert torch.equal(other(images), tiny_resnet(images))
    del tf_vars["resnet_v2_50/postnorm/gamma"]
    with pytest.raises(KeyError, match="postnorm/gamma"):
        load_slim_weights(other, tf_vars)
