"""Per-frame image encoders f_image: (N, 3, H, W) -> phi (N, D)."""

from __future__ import annotations

from torch import Tensor, nn

from lightning_hmd.errors import ConfigError
from lightning_hmd.models.resnet_v2 import ResNetV2

ENCODER_NAMES = ("resnet50_v2", "torchvision_resnet50", "small_cnn")
TORCHVISION_DIM = 2048
SMALL_CNN_WIDTHS = (16, 32, 64, 128)
SMALL_CNN_GRID = 4  # side of the final feature map that is flattened


class SmallCNN(nn.Module):
    """A small from-scratch encoder for low-resolution crops (CPU runs, the quickstart).

    Four stages of (3x3 conv stride 2, 3x3 conv), each conv followed by group norm and ReLU,
    take a 64-pixel crop to a 4x4 map (other sizes are average-pooled to 4x4), which is
    flattened and projected to D. Unlike a ResNet's global average pool, the flattened map
    keeps *where* each part is in the crop: at a few channels and a few pixels per limb that
    is what the camera and the limb angles are read from. Group and layer norm rather than
    batch norm: a training batch holds a few clips of nearly identical consecutive frames, whose
    batch statistics are far from those of the test set.
    """

    def __init__(self, out_dim: int, widths: tuple[int, ...] = SMALL_CNN_WIDTHS):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in widths:
            for stride in (2, 1):
                layers += [
                    nn.Conv2d(c_in, c, 3, stride, 1, bias=False),
                    nn.GroupNorm(8, c),
                    nn.ReLU(inplace=True),
                ]
                c_in = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(SMALL_CNN_GRID))
        self.project = nn.Linear(c_in * SMALL_CNN_GRID**2, out_dim)
        self.norm = nn.LayerNorm(out_dim)  # unit-scale phi for the regressors

    def forward(self, images: Tensor) -> Tensor:
        """images: (N, 3, H, W) -> (N, D)."""
        # No ReLU on phi: one here can die for every unit at once (all-zero phi).
        return self.norm(self.project(self.features(images).flatten(1)))


class ImageEncoder(nn.Module):
    """A backbone mapping (N, 3, H, W) to (N, D), optionally frozen.

    A frozen encoder has ``requires_grad=False`` on every parameter and stays in eval mode (batch
    norm uses its stored statistics) even when the surrounding model is put in train mode, as
    HMMR's precomputed, fixed phi (the ``precomputed_phi`` and ``freeze_phi`` flags,
    ``src/config.py``).

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
        name: ``resnet50_v2`` (HMR's TF-slim layout, :class:`ResNetV2`),
            ``torchvision_resnet50`` (post-activation v1, fc removed; needs torchvision) or
            ``small_cnn`` (:class:`SmallCNN`, for low-resolution crops on CPU).
        feat_dim: D. ``resnet50_v2`` scales its widths so that D = 32 * base_width (2048 is the
            real ResNet-50); ``torchvision_resnet50`` only supports 2048.
        freeze: freeze the weights and batch-norm statistics.

    Returns:
        an :class:`ImageEncoder` mapping (N, 3, H, W) -> (N, feat_dim). No weights are loaded.
    """
    if name == "resnet50_v2":
        if feat_dim % 32:
            raise ConfigError(f"resnet50_v2 needs feat_dim divisible by 32, got {feat_dim}")
        backbone: nn.Module = ResNetV2(base_width=feat_dim // 32)
    elif name == "torchvision_resnet50":
        if feat_dim != TORCHVISION_DIM:
            raise ConfigError(
                f"torchvision_resnet50 outputs {TORCHVISION_DIM} features, not {feat_dim}"
            )
        backbone = _torchvision_resnet50()
    elif name == "small_cnn":
        backbone = SmallCNN(feat_dim)
    else:
        raise ConfigError(f"unknown image encoder {name!r}; choose one of {ENCODER_NAMES}")
    return ImageEncoder(backbone, feat_dim, frozen=freeze)
