"""``lightning-hmd import-tf``: the released HMR and HMMR TensorFlow checkpoints as a
lightning_hmd checkpoint.

HMR's ``hmr_noS5.ckpt-642561`` provides the ResNet-50 v2 image encoder (and its own
``mean_param`` and ``3D_module``); HMMR's ``hmmr_model.ckpt-1119816`` the temporal encoder,
f_3D, the past/future heads, the hallucinator, the pose discriminator and the ``mean_param``
its f_3D iterates from (HMR's is used only without HMMR). Variable names and layouts follow
the original code (``src/models.py``, ``src/discriminators.py``; ``mean_param`` in
``load_mean_omega`` of HMMR's ``src/trainer_sequence_fc.py``):

==========================================================  ===================================
TF variable                                                 lightning_hmd
==========================================================  ===================================
``resnet_v2_50/...`` (slim names)                           ``generator.image_encoder.backbone``
                                                            (``ResNetV2.slim_variable_names``)
``mean_param`` (1, 85)                                      ``generator.smpl_head.theta_mean``
``single_view_ief/3D_module/fc{1,2,3}`` (HMR: ``3D_module``)  ``generator.smpl_head.ief.fc*``
``single_view_ief_{future,past}{k}/3D_module/fc*``          ``generator.delta_heads["±k"].ief``
``AZ_FC_block_preact_gn{1,2}block_{i}/{gamma,beta}``        ``generator.temporal.blocks.i.norm*``
``AZ_FC_block2_conv{1,2}block_{i}/{weights,biases}``        ``generator.temporal.blocks.i.conv*``
``fc2_res/fc{1,2,3}``                                       ``generator.hallucinator.fc*``
``D_pose/D_conv{1,2}``, ``pose_out_j{j}``,                  ``discriminator.pose.conv*``,
``D_alljoints_fc{1,2}``, ``D_alljoints_out``                ``joint_heads[j]``, ``fc1/fc2/fc_out``
==========================================================  ===================================

Layouts: dense kernels ``(in, out)`` are transposed; 2D conv kernels HWIO become OIHW; the
temporal ``[k, 1, C_in, C_out]`` kernels become Conv1d ``(C_out, C_in, k)``; the
discriminator's 1x1 convs are dense layers on the 9 rotation entries. TF-slim's "SAME"
padding is reproduced by the modules themselves (``ResNetV2``: explicit padding where slim's
``conv2d_same`` pads, TF "SAME" max pooling); batch norm's moving statistics become running
statistics (epsilon 1e-5), group norm keeps TF's epsilon 1e-6 and 32 groups. The model's
sizes (widths, blocks, offsets, hallucinator) are read from the variables' names and shapes;
anything of ours without a TF counterpart (the shape discriminator) keeps its initial values
and is listed. Training-only variables (Adam slots, ``global_step``) are skipped.

Reading TensorFlow checkpoints needs ``tensorflow`` (the optional extra ``[tf]``), in a
child process (``models/tf_reader.py``); nothing else in the package does.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lightning_hmd.errors import CheckpointError
from lightning_hmd.models.generator import delta_key
from lightning_hmd.models.resnet_v2 import MissingSlimVariableError, ResNetV2, slim_state

TRAINING_ONLY = re.compile(
    r"(/Adam(_\d+)?$|^beta[12]_power|^global_step$|/ExponentialMovingAverage)"
)


class TFImportError(CheckpointError):
    """A checkpoint that cannot be imported: names the file or variable and the problem."""


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint (``prefix`` as given to the TF saver, e.g.
    ``models/hmr_noS5.ckpt-642561``), training-only ones left out. TensorFlow runs in a child
    process (``models/tf_reader.py`` says why).

    Raises:
        TFImportError: tensorflow missing, or no readable checkpoint at ``prefix``.
    """
    if not Path(f"{prefix}.index").is_file():
        raise TFImportError(f"{prefix}: no TensorFlow checkpoint ({prefix}.index not found)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "variables.npz"
        done = subprocess.run(
            [sys.executable, "-m", "lightning_hmd.models.tf_reader", str(prefix), str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 3:
            raise TFImportError(
                "reading TensorFlow checkpoints needs tensorflow: pip install 'lightning-hmd[tf]'"
            )
        if done.returncode != 0:
            reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "crashed"
            raise TFImportError(f"{prefix}: not a readable TensorFlow checkpoint ({reason})")
        with np.load(out) as arrays:
            return {n: arrays[n] for n in sorted(arrays.files) if not TRAINING_ONLY.search(n)}


def _offsets(hmmr: Mapping[str, np.ndarray]) -> list[int]:
    found = set()
    for name in hmmr:
        m = re.match(r"single_view_ief_(future|past)(\d+)/", name)
        if m:
            found.add(int(m.group(2)) * (1 if m.group(1) == "future" else -1))
    return sorted(found)


def _blocks(hmmr: Mapping[str, np.ndarray]) -> int:
    return len({m.group(1) for n in hmmr if (m := re.match(r"AZ_FC_block2_conv1block_(\d+)/", n))})


def model_overrides(hmr: Mapping[str, np.ndarray], hmmr: Mapping[str, np.ndarray]) -> list[str]:
    """Config overrides describing the checkpoints' model (sizes from names and shapes)."""
    both = {**hmr, **hmmr}
    over = ["model.pose_repr=axis_angle", "model.shape_discriminator=false"]
    if "resnet_v2_50/postnorm/gamma" in both:
        feat = both["resnet_v2_50/postnorm/gamma"].shape[0]
        over += ["data.inputs=images", "model.encoder=resnet50_v2"]
    elif "fc2_res/fc3/biases" in both:
        feat = both["fc2_res/fc3/biases"].shape[0]
        over += ["data.inputs=features"]
    else:
        scope = "single_view_ief/3D_module" if hmmr else "3D_module"
        if f"{scope}/fc1/weights" not in both:
            raise TFImportError("no image encoder and no f_3D (3D_module) in the checkpoints")
        feat = both[f"{scope}/fc1/weights"].shape[0] - 85
        over += ["data.inputs=features"]
    over.append(f"model.feat_dim={feat}")
    ief = "single_view_ief/3D_module/fc1/weights" if hmmr else "3D_module/fc1/weights"
    if ief not in both:
        raise TFImportError(f"{ief} not in the checkpoint: no f_3D to import")
    over.append(f"model.regressor_hidden={both[ief].shape[1]}")
    over.append(f"model.temporal.num_blocks={_blocks(hmmr)}")
    over.append(f"model.delta_t=[{','.join(map(str, _offsets(hmmr)))}]")
    hal = "fc2_res/fc1/weights" in hmmr
    over.append(f"model.hallucinator={str(hal).lower()}")
    if hal:
        over.append(f"model.hallucinator_hidden={hmmr['fc2_res/fc1/weights'].shape[1]}")
    if "D_pose/D_conv1/weights" in hmmr:
        over.append(f"model.disc_channels={hmmr['D_pose/D_conv1/weights'].shape[-1]}")
        over.append(f"model.disc_hidden={hmmr['D_pose/D_alljoints_fc1/weights'].shape[1]}")
    return over


@dataclass
class _Conversion:
    """TF variables on their way to a state dict: ``out`` (state-dict key -> array in our
    layout) and ``used`` (the TF variables taken so far)."""

    src: Mapping[str, np.ndarray]
    out: dict[str, np.ndarray] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def take(self, name: str) -> np.ndarray:
        self.used.add(name)
        return self.src[name]

    def dense(self, scope: str, prefix: str) -> None:
        """A TF dense layer ``scope/{weights,biases}`` (kernel ``(in, out)``) as ``prefix``'s
        ``nn.Linear`` weight ``(out, in)`` and bias."""
        self.out[f"{prefix}.weight"] = self.take(f"{scope}/weights").T
        self.out[f"{prefix}.bias"] = self.take(f"{scope}/biases")


def _image_encoder(cv: _Conversion, backbone: ResNetV2) -> None:
    """The ResNet-50 v2 backbone from its TF-slim variables (:func:`slim_state`)."""
    try:
        weights = slim_state(backbone, cv.src)
    except MissingSlimVariableError as err:
        raise TFImportError(f"{err.tf_name} not in the checkpoints (the image encoder)") from None
    cv.used.update(backbone.slim_variable_names().values())
    for key, value in weights.items():
        cv.out[f"generator.image_encoder.backbone.{key}"] = value.numpy()


def _f3d_heads(cv: _Conversion, scope: str, offsets: Sequence[int]) -> None:
    """f_3D (``scope``: HMMR's ``single_view_ief/3D_module`` or HMR's ``3D_module``, the
    scopes of ``encoder_fc3_dropout`` / ``Encoder_fc3_dropout`` in ``src/models.py``) and the
    Δt heads (``single_view_ief_{future,past}{|Δt|}/3D_module``, HMMR's ``call_hmr_ief``),
    three dense layers each."""
    for k in (1, 2, 3):
        cv.dense(f"{scope}/fc{k}", f"generator.smpl_head.ief.fc{k}")
    for dt in offsets:
        head = f"single_view_ief_{'future' if dt > 0 else 'past'}{abs(dt)}/3D_module"
        for k in (1, 2, 3):
            cv.dense(f"{head}/fc{k}", f"generator.delta_heads.{delta_key(dt)}.ief.fc{k}")


def _temporal_blocks(cv: _Conversion, num_blocks: int) -> None:
    """The temporal encoder's residual blocks: group norm gamma/beta and the ``[k, 1, C_in,
    C_out]`` conv kernels as Conv1d ``(C_out, C_in, k)``."""
    for i in range(num_blocks):
        p = f"generator.temporal.blocks.{i}"
        for n in (1, 2):
            gn, conv = f"AZ_FC_block_preact_gn{n}block_{i}", f"AZ_FC_block2_conv{n}block_{i}"
            cv.out[f"{p}.norm{n}.weight"] = cv.take(f"{gn}/gamma")
            cv.out[f"{p}.norm{n}.bias"] = cv.take(f"{gn}/beta")
            kernel = cv.take(f"{conv}/weights")  # [k, 1, C_in, C_out]
            cv.out[f"{p}.conv{n}.weight"] = kernel[:, 0].transpose(2, 1, 0)
            cv.out[f"{p}.conv{n}.bias"] = cv.take(f"{conv}/biases")


def _pose_discriminator(cv: _Conversion, num_joints: int) -> None:
    """``D_pose``: its 1x1 convs as dense layers on the 9 rotation entries, the per-joint
    outputs stacked into one ``joint_heads`` layer, then the all-joints MLP."""
    d = "discriminator.pose"
    for n in (1, 2):
        cv.out[f"{d}.conv{n}.weight"] = cv.take(f"D_pose/D_conv{n}/weights")[0, 0].T
        cv.out[f"{d}.conv{n}.bias"] = cv.take(f"D_pose/D_conv{n}/biases")
    joints = range(num_joints)
    cv.out[f"{d}.joint_heads.weight"] = np.stack(
        [cv.take(f"D_pose/pose_out_j{j}/weights")[:, 0] for j in joints]
    )
    cv.out[f"{d}.joint_heads.bias"] = np.concatenate(
        [cv.take(f"D_pose/pose_out_j{j}/biases") for j in joints]
    )
    for ours, theirs in (
        ("fc1", "D_alljoints_fc1"),
        ("fc2", "D_alljoints_fc2"),
        ("fc_out", "D_alljoints_out"),
    ):
        cv.dense(f"D_pose/{theirs}", f"{d}.{ours}")


def _as_tensors(
    arrays: Mapping[str, np.ndarray], state: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The converted arrays as tensors of ``state``'s dtypes, each checked against the
    parameter of the same name.

    Raises:
        TFImportError: a key ``state`` lacks, or a shape that does not fit (names both sides).
    """
    tensors = {}
    for key, value in arrays.items():
        if key not in state:
            raise TFImportError(f"{key}: no such parameter in the configured model")
        if tuple(state[key].shape) != value.shape:
            raise TFImportError(
                f"{key}: TF gives shape {value.shape}, the configured model has "
                f"{tuple(state[key].shape)} (give the matching config overrides)"
            )
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value)).to(state[key].dtype)
    return tensors


def convert(
    hmr: Mapping[str, np.ndarray], hmmr: Mapping[str, np.ndarray], module: torch.nn.Module
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The TF variables as ``module``'s state (``generator.*``, ``discriminator.*``) and the
    TF variables that were not used.

    Raises:
        TFImportError: a variable whose shape does not fit (names both sides).
    """
    g = module.generator
    cv = _Conversion({**hmr, **hmmr})  # HMMR's mean_param wins: its f_3D iterates from it
    if g.image_encoder is not None:
        _image_encoder(cv, g.image_encoder.backbone)
    cv.out["generator.smpl_head.theta_mean"] = cv.take("mean_param").reshape(-1)
    _f3d_heads(cv, "single_view_ief/3D_module" if hmmr else "3D_module", g.delta_offsets)
    _temporal_blocks(cv, len(g.temporal.blocks))
    if g.hallucinator is not None:
        for k in (1, 2, 3):
            cv.dense(f"fc2_res/fc{k}", f"generator.hallucinator.fc{k}")
    if "D_pose/D_conv1/weights" in cv.src:
        _pose_discriminator(cv, module.discriminator.pose.num_joints)
    tensors = _as_tensors(cv.out, module.state_dict())
    unused = sorted(set(cv.src) - cv.used - {"mean_param"})
    return tensors, unused


def bare_module(cfg) -> torch.nn.Module:  # noqa: ANN001 - a DictConfig
    """The trained parts of ``HMMRModule`` (generator, discriminator, counters) with its
    state-dict names, built without the body model: importing needs no SMPL files, and f_3D's
    starting point comes from the checkpoint."""
    from lightning_hmd.models.build import build_discriminator, build_generator

    module = torch.nn.Module()
    module.generator = build_generator(
        cfg.model,
        torch.zeros(24, 3),
        torch.zeros(10),
        with_image_encoder=cfg.data.inputs == "images",
    )
    module.discriminator = build_discriminator(cfg.model)
    module.register_buffer("batches_done", torch.zeros((), dtype=torch.long))
    module.register_buffer("nonfinite_total", torch.zeros((), dtype=torch.long))
    return module


def import_tf(
    hmr_prefix: str | Path | None,
    hmmr_prefix: str | Path | None,
    out: str | Path,
    preset: str = "paper",
    overrides: Sequence[str] = (),
) -> dict:
    """Convert the checkpoints and write a lightning_hmd checkpoint to ``out``; returns a
    report (``overrides``, ``imported``, ``kept``: parameters left at their initial values,
    ``unused``: TF variables not taken)."""
    from lightning_hmd.config import load_config, to_container

    if hmr_prefix is None and hmmr_prefix is None:
        raise TFImportError("give --hmr, --hmmr or both")
    hmr = read_checkpoint(hmr_prefix) if hmr_prefix else {}
    hmmr = read_checkpoint(hmmr_prefix) if hmmr_prefix else {}
    inferred = model_overrides(hmr, hmmr)
    # the checkpoint holds every weight: its config starts from nothing else
    cfg = load_config(preset, overrides=["model.init_checkpoint=none", *inferred, *overrides])
    config = to_container(cfg)
    module = bare_module(cfg)
    tensors, unused = convert(hmr, hmmr, module)
    state = module.state_dict()
    state.update(tensors)
    kept = sorted(k for k in state if k not in tensors and not k.endswith("num_batches_tracked"))
    blob = {
        "state_dict": state,
        "hyper_parameters": {"config": config},
        "imported_from": {"hmr": str(hmr_prefix or ""), "hmmr": str(hmmr_prefix or "")},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    torch.save(blob, tmp)
    tmp.replace(out)
    return {"overrides": inferred, "imported": len(tensors), "kept": kept, "unused": unused}
