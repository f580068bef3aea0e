"""Per-frame image encoders f_image: (N, 3, H, W) -> phi (N, D)."""

from __future__ import annotations

from torch import Tensor, nn

from lightning_hmd.models.resnet_v2 import ResNetV2

ENCODER_NAMES = ("resnet50_v2", "torchvision_resnet50")
TORCHVISION_DIM = 2048


class ImageEncoder(nn.Module):
    """A backbone mapping (N, 3, H, W) to (N, D), optionally frozen.

    A frozen encoder has ``requires_grad=False`` on every parameter and stays in eval mode (batch
    norm uses its stored statistics) even when the surrounding model is put in train mode, as
    HMMR's precomputed, fixed phi.

    Attributes:
        backbone: the wrapped network.
        out_dim: D.
        frozen: whether the backbone is frozen.
    """

    def __init__(self, backbone: nn.Module, out_dim: int, frozen: bool = False):
        super().__init__()
        self.backbone = backbone
        self.out_dim = out_dim
        self.frozen = frozen
        if frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        """images: (N, 3, H, W) in [-1, 1] -> phi: (N, D)."""
        return self.backbone(images)


def _torchvision_resnet50() -> nn.Module:
    try:
        import torchvision
    except ImportError as err:
        raise ImportError(
            "image encoder 'torchvision_resnet50' needs torchvision; install the extra: "
            "pip install 'lightning_hmd[torchvision]'"
        ) from err
    net = torchvision.models.resnet50(weights=None)
    net.fc = nn.Identity()
    return net


def build_image_encoder(name: str, feat_dim: int = 2048, freeze: bool = False) -> ImageEncoder:
    """Build an image encoder by name.

    Args:
        name: ``resnet50_v2`` (HMR's TF-slim layout, :class:`ResNetV2`) or
            ``torchvision_resnet50`` (post-activation v1, fc removed; needs torchvision).
        feat_dim: D. ``resnet50_v2`` scales its widths so that D = 32 * base_width (2048 is the
            real ResNet-50); ``torchvision_resnet50`` only supports 2048.
        freeze: freeze the weights and batch-norm statistics.

    Returns:
        an :class:`ImageEncoder` mapping (N, 3, H, W) -> (N, feat_dim). No weights are loaded.
    """
    if name == "resnet50_v2":
        if feat_dim % 32:
            raise ValueError(f"resnet50_v2 needs feat_dim divisible by 32, got {feat_dim}")
        backbone: nn.Module = ResNetV2(base_width=feat_dim // 32)
    elif name == "torchvision_resnet50":
        if feat_dim != TORCHVISION_DIM:
            raise ValueError(
                f"torchvision_resnet50 outputs {TORCHVISION_DIM} features, not {feat_dim}"
            )
        backbone = _torchvision_resnet50()
    else:
        raise ValueError(f"unknown image encoder {name!r}; choose one of {ENCODER_NAMES}")
    return ImageEncoder(backbone, feat_dim, frozen=freeze)
