"""ResNet-50 v2 (pre-activation) in the TF-slim ``resnet_v2_50`` layout used by HMR/HMMR.

Layout (slim ``nets/resnet_v2.py`` with ``num_classes=None``, ``global_pool=True``):

- root: ``conv1`` 7x7/2 with bias, no norm (``conv2d_same``: explicit symmetric pad 3, then VALID),
  then ``pool1`` 3x3/2 max pool with TF "SAME" padding (asymmetric for even inputs: the extra
  row/column goes at the end; padded cells never win the max);
- four blocks of 3, 4, 6, 3 bottleneck-v2 units; output depth ``4 * w`` and bottleneck width
  ``w`` with ``w = base_width * (1, 2, 4, 8)``; the stride (2, 2, 2, 1) sits in the LAST unit of
  each block (on its 3x3 ``conv2``);
- unit: ``preact = relu(BN(x))``; shortcut is ``1x1 conv(preact)`` (with bias, unit stride) when
  the depth changes, else ``x`` subsampled by the stride; residual is
  ``conv1`` 1x1+BN+ReLU -> ``conv2`` 3x3/stride+BN+ReLU -> ``conv3`` 1x1 with bias, no norm;
- ``postnorm`` BN+ReLU, then the global average pool.

For a 224x224 input the maps are 112 (conv1), 56 (pool1), 28 (block1), 14 (block2), 7 (block3)
and 7 (block4). Batch norm uses slim's ``resnet_arg_scope`` values: epsilon 1e-5, decay 0.997
(PyTorch momentum 0.003), with scale.

TF variable names (``ResNetV2.slim_variable_names`` returns the full map; ``U`` = unit scope
``resnet_v2_50/blockB/unit_K/bottleneck_v2``):

===============================================  ================================================
PyTorch state-dict key                           TF-slim variable
===============================================  ================================================
``conv1.weight`` / ``conv1.bias``                ``resnet_v2_50/conv1/weights`` / ``biases``
``blockB.unit_K.preact.{weight,bias}``           ``U/preact/{gamma,beta}``
``blockB.unit_K.preact.running_{mean,var}``      ``U/preact/moving_{mean,variance}``
``blockB.unit_K.shortcut.{weight,bias}``         ``U/shortcut/{weights,biases}``
``blockB.unit_K.conv{1,2}.conv.weight``          ``U/conv{1,2}/weights``
``blockB.unit_K.conv{1,2}.bn.*``                 ``U/conv{1,2}/BatchNorm/{gamma,beta,moving_*}``
``blockB.unit_K.conv3.{weight,bias}``            ``U/conv3/{weights,biases}``
``postnorm.*``                                   ``resnet_v2_50/postnorm/{gamma,beta,moving_*}``
===============================================  ================================================

TF conv kernels are HWIO: convert with ``torch.from_numpy(w).permute(3, 2, 0, 1)``. The input is
NCHW RGB in [-1, 1] (HMR's ``(x / 255 - 0.5) * 2``, ``preprocess_image`` in ``demo.py``), where
TF took NHWC.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn
from torch.nn import functional

SCOPE = "resnet_v2_50"
BLOCK_UNITS = (3, 4, 6, 3)
BLOCK_STRIDES = (2, 2, 2, 1)
ROOT_WIDTH = 64  # slim's root conv1 has 64 outputs whatever the blocks' widths
BN_EPS = 1e-5
BN_MOMENTUM = 1.0 - 0.997  # TF decay 0.997
_BN_NAMES = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
_CONV_NAMES = {"weight": "weights", "bias": "biases"}


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding ``(begin, end)`` along one spatial axis of length ``size``."""
    out = -(-size // stride)  # ceil
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def max_pool_same(x: Tensor, kernel_size: int = 3, stride: int = 2) -> Tensor:
    """Max pool with TF "SAME" padding: (N, C, H, W) -> (N, C, ceil(H/s), ceil(W/s))."""
    top, bottom = same_padding(x.shape[-2], kernel_size, stride)
    left, right = same_padding(x.shape[-1], kernel_size, stride)
    x = functional.pad(x, (left, right, top, bottom), value=float("-inf"))
    return functional.max_pool2d(x, kernel_size, stride)


class ConvBNReLU(nn.Module):
    """slim ``conv2d`` with ``normalizer_fn=batch_norm``: conv (no bias) -> BN -> ReLU.

    Odd kernels use symmetric padding ``(k - 1) // 2``, which equals TF "SAME" at stride 1 and
    slim's ``conv2d_same`` (explicit pad, then VALID) at stride > 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=(kernel_size - 1) // 2,
            bias=False,
        )
        self.bn = _batch_norm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return functional.relu(self.bn(self.conv(x)))


class BottleneckV2(nn.Module):
    """Pre-activation bottleneck unit (slim ``bottleneck_v2``).

    (N, C_in, H, W) -> (N, depth, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, depth: int, bottleneck: int, stride: int):
        super().__init__()
        self.stride = stride
        self.preact = _batch_norm(in_channels)
        self.shortcut = (
            nn.Conv2d(in_channels, depth, 1, stride=stride) if depth != in_channels else None
        )
        self.conv1 = ConvBNReLU(in_channels, bottleneck, 1)
        self.conv2 = ConvBNReLU(bottleneck, bottleneck, 3, stride)
        self.conv3 = nn.Conv2d(bottleneck, depth, 1)

    def forward(self, x: Tensor) -> Tensor:
        preact = functional.relu(self.preact(x))
        if self.shortcut is None:
            shortcut = x[:, :, :: self.stride, :: self.stride]  # slim `subsample`
        else:
            shortcut = self.shortcut(preact)
        return shortcut + self.conv3(self.conv2(self.conv1(preact)))


class ResNetV2(nn.Module):
    """ResNet-50 v2 trunk with global average pooling: (N, 3, H, W) in [-1, 1] -> (N, D).

    Args:
        base_width: width of block1's bottleneck; ``D = 32 * base_width``.
            64 is the real ResNet-50 (D = 2048); smaller values give the same topology for tests.
        root_width: outputs of the root conv1 (64 in slim's resnet_v2, whatever the blocks).
    """

    def __init__(self, base_width: int = 64, root_width: int = ROOT_WIDTH):
        super().__init__()
        self.out_dim = 32 * base_width
        self.conv1 = nn.Conv2d(3, root_width, 7, stride=2, padding=3)
        in_channels = root_width
        for index, (units, stride) in enumerate(zip(BLOCK_UNITS, BLOCK_STRIDES, strict=True)):
            bottleneck = base_width * 2**index
            layers = OrderedDict()
            for k in range(units):
                unit_stride = stride if k == units - 1 else 1
                layers[f"unit_{k + 1}"] = BottleneckV2(
                    in_channels, 4 * bottleneck, bottleneck, unit_stride
                )
                in_channels = 4 * bottleneck
            self.add_module(f"block{index + 1}", nn.Sequential(layers))
        self.postnorm = _batch_norm(in_channels)
        self.reset_parameters()

    @property
    def blocks(self) -> list[nn.Sequential]:
        return [self.block1, self.block2, self.block3, self.block4]

    def reset_parameters(self) -> None:
        """He-normal convs, zero biases, unit/zero BN (slim's ``resnet_arg_scope`` defaults)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()

    def forward_maps(self, images: Tensor) -> dict[str, Tensor]:
        """Intermediate maps ``conv1, pool1, block1..block4, postnorm``: each (N, C, h, w)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        maps = {"conv1": self.conv1(images)}
        x = maps["pool1"] = max_pool_same(maps["conv1"])
        for index, block in enumerate(self.blocks):
            x = maps[f"block{index + 1}"] = block(x)
        maps["postnorm"] = functional.relu(self.postnorm(x))
        return maps

    def forward(self, images: Tensor) -> Tensor:
        """images: (N, 3, H, W) in [-1, 1] -> phi: (N, D)."""
        return self.forward_maps(images)["postnorm"].mean(dim=(2, 3))

    def slim_variable_names(self) -> dict[str, str]:
        """State-dict key -> TF-slim variable name (``num_batches_tracked`` has none)."""
        names = {}
        for module_name, module in self.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                table = _BN_NAMES
            elif isinstance(module, nn.Conv2d):
                table = _CONV_NAMES
            else:
                continue
            scope = _slim_scope(module_name)
            for key in list(dict(module.named_parameters(recurse=False))) + list(
                dict(module.named_buffers(recurse=False))
            ):
                if key in table:
                    names[f"{module_name}.{key}"] = f"{scope}/{table[key]}"
        return names


def _slim_scope(module_name: str) -> str:
    """Module path -> TF scope.

    ``block1.unit_1.conv1.bn`` -> ``resnet_v2_50/block1/unit_1/bottleneck_v2/conv1/BatchNorm``.
    """
    parts = module_name.split(".")
    if parts[0].startswith("block"):
        parts.insert(2, "bottleneck_v2")
    if parts[-1] == "conv" and len(parts) > 1:
        parts.pop()
    elif parts[-1] == "bn":
        parts[-1] = "BatchNorm"
    return "/".join([SCOPE, *parts])


class MissingSlimVariableError(KeyError):
    """A TF-slim variable (``tf_name``) that the given variables lack, for state-dict ``key``."""

    def __init__(self, tf_name: str, key: str):
        super().__init__(f"missing TF variable {tf_name!r} for {key!r}")
        self.tf_name = tf_name
        self.key = key


def slim_state(model: ResNetV2, variables: Mapping[str, ArrayLike]) -> dict[str, Tensor]:
    """``model``'s state-dict key -> its TF-slim variable in PyTorch's layout (conv kernels
    HWIO -> OIHW), in :meth:`ResNetV2.slim_variable_names` order; shapes are not checked.

    Raises:
        MissingSlimVariableError: naming the first TF variable that ``variables`` lacks.
    """
    state = {}
    for key, tf_name in model.slim_variable_names().items():
        if tf_name not in variables:
            raise MissingSlimVariableError(tf_name, key)
        value = torch.as_tensor(variables[tf_name])
        state[key] = value.permute(3, 2, 0, 1) if value.ndim == 4 else value  # HWIO -> OIHW
    return state


@torch.no_grad()
def load_slim_weights(model: ResNetV2, variables: Mapping[str, ArrayLike]) -> None:
    """Copy TF-slim variables (name -> tensor, conv kernels HWIO) into ``model`` in place.

    Raises:
        KeyError: naming the first TF variable that ``variables`` lacks (nothing is copied).
        ValueError: naming a variable whose shape does not fit.
    """
    names = model.slim_variable_names()
    state = model.state_dict()
    for key, value in slim_state(model, variables).items():
        if value.shape != state[key].shape:
            raise ValueError(
                f"{names[key]}: shape {tuple(value.shape)} does not match {key} "
                f"{tuple(state[key].shape)} (after HWIO -> OIHW)"
            )
        state[key].copy_(value)
