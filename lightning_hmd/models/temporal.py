"""Temporal encoder f_movie_strip: residual 1D convolutions over time.

HMMR's ``az_fc2_groupnorm`` and its blocks ``az_fc_block2`` (``src/models.py``). TF variable
names of block ``i`` (for a later weight importer): ``norm1`` / ``norm2`` <->
``AZ_FC_block_preact_gn{1,2}block_{i}/{gamma,beta}``; ``conv1`` / ``conv2`` <->
``AZ_FC_block2_conv{1,2}block_{i}/{weights,biases}`` with kernels (k, 1, C_in, C_out):
``w[:, 0].permute(2, 1, 0)`` gives the PyTorch (C_out, C_in, k).
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional

from lightning_hmd.models.initializers import init_layer_

RESIDUAL_INIT_FACTOR = 0.001  # "small xavier" on the second conv: each block starts near identity


def same_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``functional.conv1d(x, weight, bias, padding="same")`` as one matrix product over frames.

    x: (B, C_in, T), weight: (C_out, C_in, k), bias: (C_out,) -> (B, C_out, T). Zero padding
    as PyTorch's ``"same"``: ``(k - 1) // 2`` frames before, the rest after. The k shifted
    copies of the clip are laid side by side, (B·T, C_in·k), and multiplied by the flattened
    kernel: on CPU the backward pass of oneDNN's 1D convolution runs at about half the speed
    of a matrix product of the same size (``benchmarks/step_efficiency.py``), the product's
    backward at full speed; the copies are small next to the kernel (k·C_in·C_out).
    """
    B, C, T = x.shape
    k = weight.shape[-1]
    left = (k - 1) // 2
    frames = functional.pad(x, (left, k - 1 - left)).transpose(1, 2)  # (B, T + k - 1, C_in)
    cols = frames.unfold(1, k, 1).reshape(B * T, C * k)  # (B·T, C_in·k), index c·k + j
    out = functional.linear(cols, weight.flatten(1), bias)  # (B·T, C_out)
    return out.view(B, T, -1).transpose(1, 2)


class TemporalBlock(nn.Module):
    """GN -> ReLU -> Conv1d -> GN -> ReLU -> Conv1d -> + input, on (B, D, T).

    Convs use zero "same" padding in time and have biases. GroupNorm statistics are taken over
    (channels of a group, all T frames), as TF's ``group_norm`` on NT1C with reduction axes (T, 1).
    """

    def __init__(self, channels: int, kernel_size: int, num_groups: int, eps: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(num_groups, channels, eps=eps)
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding="same")
        self.norm2 = nn.GroupNorm(num_groups, channels, eps=eps)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding="same")
        init_layer_(self.conv1)  # Xavier uniform
        init_layer_(self.conv2, factor=RESIDUAL_INIT_FACTOR)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, D, T) -> (B, D, T)."""
        residual = same_conv1d(self.norm1(x).relu(), self.conv1.weight, self.conv1.bias)
        residual = same_conv1d(self.norm2(residual).relu(), self.conv2.weight, self.conv2.bias)
        return x + residual


class TemporalEncoder(nn.Module):
    """phi (B, T, D) -> movie strip Phi (B, T, D).

    ``num_blocks=0`` is the identity (the single-frame HMR baseline).

    Through its convolutions each output frame sees ``receptive_field`` input frames centred on
    it; GroupNorm's statistics are computed over the whole clip, so at training time every frame
    also influences every output through the normalisation.
    """

    causal = False

    def __init__(
        self,
        channels: int,
        num_blocks: int,
        kernel_size: int = 3,
        num_groups: int = 32,
        eps: float = 1e-6,
    ):
        super().__init__()
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
        self.kernel_size = kernel_size
        self.blocks = nn.ModuleList(
            TemporalBlock(channels, kernel_size, num_groups, eps) for _ in range(num_blocks)
        )

    @property
    def receptive_field(self) -> int:
        """Frames seen by one output through the convs: ``(k - 1) * 2 * num_blocks + 1``
        (``docs/derivations.md``: the receptive field and HMMR's evaluation windows)."""
        return (self.kernel_size - 1) * 2 * len(self.blocks) + 1

    def forward(self, phi: Tensor) -> Tensor:
        """phi: (B, T, D) -> Phi: (B, T, D)."""
        if not self.blocks:
            return phi
        x = rearrange(phi, "b t d -> b d t")
        for block in self.blocks:
            x = block(x)
        return rearrange(x, "b d t -> b t d")
