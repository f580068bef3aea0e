"""BodyModel: SMPL through ``smplx.SMPLLayer`` (rotation matrices in; joints and vertices out).

Model files are read by :mod:`lightning_hmd.body.model_files` only. Every tensor of the body
model is a non-persistent buffer: it moves with ``.to()``, never enters a checkpoint, and
:func:`exclude_from_ddp` keeps it out of DDP's buffer broadcast.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from einops import pack, unpack
from smplx.lbs import batch_rigid_transform
from torch import Tensor, nn

from lightning_hmd.body import model_files
from lightning_hmd.body.model_files import (
    NUM_BETAS,
    NUM_POSE_BASIS,
    NUM_SMPL_JOINTS,
    RegressorName,
)
from lightning_hmd.errors import DataError

# smplx always appends these face keypoints; BodyModel does not use them, so all point at vertex
# 0 (valid for any mesh) and the feet/finger extras are switched off.
_UNUSED_VERTEX_IDS = {name: 0 for name in ("nose", "reye", "leye", "rear", "lear")}
# The regressor of ``BodyOutput.joints`` (the 25 keypoints; SMPL's joints without it): what
# losses and keypoint projections read, ``forward(..., joints_only=True, regressors=KEYPOINTS)``.
KEYPOINTS = ("cocoplus",)


@dataclass
class BodyOutput:
    """Body-model outputs for leading dims ``...`` (e.g. (N,) or (B, T)).

    Attributes:
        joints: (..., 25, 3) HMMR keypoints from the cocoplus regressor; when the model has no
            cocoplus regressor, the (..., 24, 3) SMPL joints instead.
        smpl_joints: (..., 24, 3) SMPL kinematic joints.
        h36m_joints: (..., 17, 3) Human3.6M joints, or None without an h36m regressor.
        vertices: (..., V, 3) posed mesh, or None for the joints-only path.
    """

    joints: Tensor
    smpl_joints: Tensor
    h36m_joints: Tensor | None = None
    vertices: Tensor | None = None


class BodyModel(nn.Module):
    """SMPL-topology body model with optional cocoplus (25) and H36M (17) joint regressors.

    Args:
        arrays: SMPL arrays as returned by :func:`model_files.load_smpl_arrays`.
        regressors: extra regressors by name, ``cocoplus`` (25, V) and/or ``h36m`` (17, V).
        dtype: floating type of the buffers.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        regressors: Mapping[str, np.ndarray] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        num_vertices = model_files.validate_smpl_arrays(arrays)
        regressors = dict(regressors or {})
        for name, reg in regressors.items():
            K = model_files.REGRESSOR_NUM_JOINTS.get(name)
            if K is None or np.shape(reg) != (K, num_vertices):
                raise DataError(
                    f"regressor {name!r} has shape {np.shape(reg)}, expected ({K}, "
                    f"V={num_vertices}) with name in {tuple(model_files.REGRESSOR_NUM_JOINTS)}"
                )
        struct = smplx.utils.Struct(
            **{k: v for k, v in arrays.items() if k != model_files.META_KEY}
        )
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10 betas
            self.smpl = smplx.SMPLLayer(
                model_path="",
                data_struct=struct,
                num_betas=NUM_BETAS,
                vertex_ids=_UNUSED_VERTEX_IDS,
                use_hands=False,
                use_feet_keypoints=False,
                dtype=dtype,
            )
        for module in self.smpl.modules():  # keep smplx's buffers out of state_dict
            for name, buf in list(module._buffers.items()):
                if buf is not None:
                    module.register_buffer(name, buf, persistent=False)
        self.regressor_names: tuple[str, ...] = tuple(
            n for n in ("cocoplus", "h36m") if n in regressors
        )
        self._register_joints_only_buffers(arrays, regressors, dtype)

    def _register_joints_only_buffers(
        self, arrays: Mapping[str, np.ndarray], regressors: dict, dtype: torch.dtype
    ) -> None:
        """Precompute what the joints-only path needs.

        Losses need joints, not meshes. The 24 SMPL joints follow from (J_regressor @
        v_template) and (J_regressor @ shapedirs) without blending all V vertices. A regressed
        joint k is sum_u R[k, u] (sum_j W[u, j] G_j) [v_u; 1] with the posed vertices v_u linear
        in (1, betas, pose feature) and G_j the joints' 3x4 transforms, so it equals
        sum_j G_j Y[k, j] with Y[k, j] = sum_u R[k, u] W[u, j] [v_u; 1], itself linear in
        (1, betas, pose feature): the coefficients are folded here once, in float64, and no
        vertex is formed per frame (about a third of the products of shaping, posing and
        skinning the regressors' vertices, and none of their intermediate tensors).
        """
        J_reg = np.asarray(arrays["J_regressor"], np.float64)  # (24, V)
        shapedirs = np.asarray(arrays["shapedirs"], np.float64)[:, :, :NUM_BETAS]  # (V, 3, S)

        def buf(name: str, value: np.ndarray, to: torch.dtype = dtype) -> None:
            self.register_buffer(name, torch.as_tensor(value).to(to), persistent=False)

        buf("joint_template", J_reg @ np.asarray(arrays["v_template"], np.float64))  # (24, 3)
        buf("joint_shapedirs", np.einsum("jv,vcs->jcs", J_reg, shapedirs))  # (24, 3, S)
        self.regressor_sizes = tuple(len(regressors[n]) for n in self.regressor_names)
        if not self.regressor_names:
            return
        R = np.concatenate([np.asarray(regressors[n], np.float64) for n in self.regressor_names])
        subset = np.flatnonzero(np.any(R != 0, axis=0))  # (U,) vertices any regressor reads
        buf("subset", subset, torch.long)  # the full forward regresses from these vertices
        for name in self.regressor_names:
            buf(f"{name}_regressor", np.asarray(regressors[name], np.float64)[:, subset])  # (K, U)
        M = np.einsum("ku,uj->kju", R[:, subset], np.asarray(arrays["weights"], np.float64)[subset])
        K = M.shape[0]
        posedirs = np.asarray(arrays["posedirs"], np.float64)[subset]  # (U, 3, 207)
        template = np.asarray(arrays["v_template"], np.float64)[subset]  # (U, 3)
        fold = M.reshape(K * NUM_SMPL_JOINTS, -1)  # (K*24, U)
        buf("fold_template", (fold @ template).reshape(K, NUM_SMPL_JOINTS, 3))
        buf("fold_ones", M.sum(-1))  # (K, 24): the weight of the transforms' translations
        shape = np.tensordot(fold, shapedirs[subset], axes=(1, 0))  # (K*24, 3, S)
        buf("fold_shapedirs", shape.transpose(2, 0, 1).reshape(NUM_BETAS, -1))  # (S, K*24*3)
        pose = np.tensordot(fold, posedirs, axes=(1, 0))  # (K*24, 3, 207)
        buf("fold_posedirs", pose.transpose(2, 0, 1).reshape(NUM_POSE_BASIS, -1))  # (207, K*72)

    @classmethod
    def from_dir(
        cls,
        model_dir: str | Path,
        gender: str = "neutral",
        extra_regressors: Sequence[RegressorName] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> BodyModel:
        """Load from a model directory (layout in :mod:`model_files`).

        ``extra_regressors=None`` loads whichever of cocoplus/h36m are present; an explicit
        sequence requires those files.
        """
        arrays = model_files.load_smpl_arrays(model_dir, gender)
        num_vertices = arrays["v_template"].shape[0]
        names = ("cocoplus", "h36m") if extra_regressors is None else tuple(extra_regressors)
        regressors = {}
        for name in names:
            reg = model_files.load_regressor(
                model_dir, name, required=extra_regressors is not None, num_vertices=num_vertices
            )
            if reg is not None:
                regressors[name] = reg
        return cls(arrays, regressors, dtype=dtype)

    @property
    def faces(self) -> Tensor:
        """(F, 3) int64 triangle vertex indices."""
        return self.smpl.faces_tensor

    @property
    def num_vertices(self) -> int:
        return self.smpl.v_template.shape[0]

    def forward(
        self,
        pose_rotmat: Tensor,
        betas: Tensor,
        joints_only: bool = False,
        regressors: Sequence[str] | None = None,
    ) -> BodyOutput:
        """Pose and shape the body.

        Args:
            pose_rotmat: (..., 24, 3, 3) rotation per SMPL joint; joint 0 is the global rotation.
            betas: (..., 10) shape coefficients, broadcastable to the leading dims of the pose.
            joints_only: skip the mesh (``vertices`` is None); joints equal the full forward's.
            regressors: with ``joints_only``, the extra regressors to apply (None: every one
                loaded); the others' joints come back None (``joints``: SMPL's 24 joints
                when the keypoint regressor is not applied, as for a model without it).
                The training losses read the keypoints alone (:data:`KEYPOINTS`): the H3.6M
                regressor's 17 joints were 40 % of the products of their body calls.

        Returns:
            :class:`BodyOutput` with the leading dims ``...`` of ``pose_rotmat``.
        """
        if pose_rotmat.shape[-3:] != (NUM_SMPL_JOINTS, 3, 3):
            raise ValueError(f"pose_rotmat must be (..., 24, 3, 3), got {tuple(pose_rotmat.shape)}")
        if betas.shape[-1] != NUM_BETAS:
            raise ValueError(f"betas must be (..., {NUM_BETAS}), got {tuple(betas.shape)}")
        lead = pose_rotmat.shape[:-3]
        betas = betas.expand(*lead, NUM_BETAS)
        rotmat, packed_shape = pack([pose_rotmat], "* j r c")  # (N, 24, 3, 3)
        betas, _ = pack([betas], "* s")  # (N, 10)
        if joints_only:
            smpl_joints, regressed = self._joints_only(rotmat, betas, regressors)
            vertices = None
        else:
            out = self.smpl(
                betas=betas, global_orient=rotmat[:, :1], body_pose=rotmat[:, 1:], pose2rot=False
            )
            vertices = out.vertices  # (N, V, 3)
            smpl_joints = out.joints[:, :NUM_SMPL_JOINTS]  # (N, 24, 3)
            regressed = {
                name: torch.einsum(
                    "nuc,ku->nkc", vertices[:, self.subset], getattr(self, f"{name}_regressor")
                )
                for name in self.regressor_names
            }  # (N, K, 3)

        def restore(x: Tensor | None) -> Tensor | None:
            return None if x is None else unpack(x, packed_shape, "* j c")[0]

        return BodyOutput(
            joints=restore(regressed.get("cocoplus", smpl_joints)),
            smpl_joints=restore(smpl_joints),
            h36m_joints=restore(regressed.get("h36m")),
            vertices=restore(vertices),
        )

    def _joints_only(
        self, rotmat: Tensor, betas: Tensor, regressors: Sequence[str] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """SMPL joints (N, 24, 3) and the joints (N, K, 3) of each regressor of ``regressors``
        (None: all), by smplx's kinematic chain and the folded coefficients of
        :meth:`_register_joints_only_buffers`."""
        N = rotmat.shape[0]
        joints = self.joint_template + torch.einsum("ns,jcs->njc", betas, self.joint_shapedirs)
        smpl_joints, rel_transforms = batch_rigid_transform(
            rotmat, joints, self.smpl.parents, dtype=rotmat.dtype
        )  # (N, 24, 3), (N, 24, 4, 4)
        names = [n for n in self.regressor_names if regressors is None or n in regressors]
        if not names:
            return smpl_joints, {}
        # the folded rows of the chosen regressors: one slice, since there are at most two
        first = self.regressor_names.index(names[0])
        lo = sum(self.regressor_sizes[:first])
        hi = lo + sum(self.regressor_sizes[first : first + len(names)])
        cols = slice(lo * NUM_SMPL_JOINTS * 3, hi * NUM_SMPL_JOINTS * 3)
        ident = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
        pose_feature = (rotmat[:, 1:] - ident).reshape(N, -1)  # (N, 207)
        K = hi - lo
        Y = (
            self.fold_template[lo:hi].reshape(1, -1)
            + betas @ self.fold_shapedirs[:, cols]
            + pose_feature @ self.fold_posedirs[:, cols]
        ).view(N, K, NUM_SMPL_JOINTS * 3)  # (N, K, 24*3): Y[k, j] per joint j, 3 coordinates
        rot = rel_transforms[:, :, :3, :3].transpose(-1, -2).reshape(N, NUM_SMPL_JOINTS * 3, 3)
        out = torch.bmm(Y, rot) + self.fold_ones[lo:hi] @ rel_transforms[:, :, :3, 3]
        sizes = [self.regressor_sizes[self.regressor_names.index(n)] for n in names]
        return smpl_joints, dict(zip(names, out.split(sizes, dim=1), strict=True))  # (N, K, 3)


def exclude_from_ddp(root: nn.Module) -> list[str]:
    """Keep every BodyModel tensor under ``root`` out of DDP's broadcasts.

    Sets ``root._ddp_params_and_buffers_to_ignore`` (read by ``DistributedDataParallel`` and by
    Lightning's DDP strategy) to include the fully-qualified names of all buffers and
    parameters of each :class:`BodyModel` submodule; call it on the module that is wrapped
    (the LightningModule) before wrapping. Returns the names added.
    """
    names: set[str] = set()
    for prefix, module in root.named_modules():
        if isinstance(module, BodyModel):
            tensors = [
                *module.named_buffers(prefix=prefix, remove_duplicate=False),
                *module.named_parameters(prefix=prefix, remove_duplicate=False),
            ]
            names.update(name for name, _ in tensors)
    existing = set(getattr(root, "_ddp_params_and_buffers_to_ignore", ()))
    root._ddp_params_and_buffers_to_ignore = sorted(existing | names)
    return sorted(names)
