"""Headless rendering of the body mesh with pyrender (OSMesa by default, EGL if chosen).

pyrender needs an OpenGL platform before it is imported: ``PYOPENGL_PLATFORM`` defaults to
``osmesa`` here (Debian's ``libosmesa6``; software rendering, no display, no GPU). Set it to
``egl`` beforehand to use EGL instead. PyOpenGL must be 3.1.10 or later for OSMesa contexts
(pyrender pins 3.1.0, whose OSMesa binding lacks ``OSMesaCreateContextAttribs``).
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

# Camera frame of the data (x right, y down, z forward) -> OpenGL (x right, y up, z backward).
_CV_TO_GL = np.array([1.0, -1.0, -1.0])


def _one_context_program_cache() -> object:
    """A pyrender shader-program cache that ignores the OpenGL context in its key.

    pyrender keys compiled programs by ``OpenGL.contextdata.getContext()``; under OSMesa that
    is a new Python object on every call, so every frame compiles a new program and keeps it
    (about 3.5 MB per rendered frame, tens of GB over a few hundred clips). A renderer owns
    exactly one context, so the key can leave the context out: one compile per program, no
    growth.
    """
    from pyrender.shader_program import ShaderProgramCache

    class OneContextCache(ShaderProgramCache):
        def __init__(self) -> None:
            super().__init__()
            self._by_source: dict = {}

        def get_program(
            self,
            vertex_shader: str,
            fragment_shader: str,
            geometry_shader: str | None = None,
            defines: dict | None = None,
        ) -> object:
            key = (
                vertex_shader,
                fragment_shader,
                geometry_shader,
                tuple(sorted((defines or {}).items())),
            )
            if key not in self._by_source:
                self._by_source[key] = super().get_program(
                    vertex_shader, fragment_shader, geometry_shader, defines
                )
            return self._by_source[key]

        def clear(self) -> None:
            super().clear()
            self._by_source = {}

    return OneContextCache()


def _new_context_entries() -> set:
    """Keys of PyOpenGL's per-context storage (``OpenGL.contextdata``) as they are now."""
    from OpenGL import contextdata

    return {(i, k) for i, storage in enumerate(contextdata.STORAGES) for k in storage}


def _drop_context_entries(before: set) -> None:
    """Drop the per-context storage PyOpenGL added since ``before``.

    PyOpenGL keeps arrays handed to GL in a dict keyed by the current context; under OSMesa
    the context handle is a new Python object on every call, so every draw adds entries that
    are never looked up again (7 per frame, holding the frame's arrays): memory grows and
    garbage collection slows every later frame (10 -> 35 ms per frame over a few hundred
    clips). The draw has finished when ``render`` returns (the data lives in GL buffers), so
    the entries can go.
    """
    from OpenGL import contextdata

    for i, storage in enumerate(contextdata.STORAGES):
        for key in [k for k in storage if (i, k) not in before]:
            del storage[key]


class BodyRenderer:
    """Renders one mesh per call with a pinhole camera at the origin of the data's camera
    frame (principal point at the image centre, pixel centres at integer coordinates).

    Args:
        faces: (F, 3) triangle vertex indices.
        image_size: output side in pixels (square images), or ``(width, height)``.
        focal: focal length in pixels.
    """

    def __init__(self, faces: np.ndarray, image_size: int | tuple[int, int], focal: float) -> None:
        import pyrender

        self._pyrender = pyrender
        self.faces = np.asarray(faces, np.int64)
        w, h = (image_size, image_size) if np.isscalar(image_size) else image_size
        self.width, self.height = int(w), int(h)
        self.focal = float(focal)
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[0.35] * 3)
        cx = (self.width - 1) / 2.0 + 0.5  # OpenGL pixel centres sit at +0.5
        cy = (self.height - 1) / 2.0 + 0.5
        self.scene.add(pyrender.IntrinsicsCamera(self.focal, self.focal, cx, cy), pose=np.eye(4))
        light = np.eye(4)
        light[:3, :3] = [[1, 0, 0], [0, 0.8, 0.6], [0, -0.6, 0.8]]
        self.scene.add(pyrender.DirectionalLight(intensity=3.0), pose=light)
        self.renderer = pyrender.OffscreenRenderer(self.width, self.height)
        # pyrender has no public hook for its program cache; see _one_context_program_cache.
        self.renderer._renderer._program_cache = _one_context_program_cache()

    def render(
        self, vertices: np.ndarray, colour: np.ndarray, background: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Render the mesh over a background.

        Args:
            vertices: (V, 3) metres in the data's camera frame (z > 0 in front).
            colour: (3,) RGB in [0, 1] for the whole mesh, or (V, 3) per vertex.
            background: (H, W, 3) uint8.

        Returns:
            ((H, W, 3) uint8 image, (H, W) bool mask of the pixels the mesh covers).
        """
        node = self.scene.add(self._mesh(vertices, colour))
        before = _new_context_entries()
        try:
            rgb, depth = self.renderer.render(self.scene)
        finally:
            self.scene.remove_node(node)
            _drop_context_entries(before)
        mask = depth > 0
        image = np.where(mask[..., None], rgb, background).astype(np.uint8)
        return image, mask

    def _mesh(self, vertices: np.ndarray, colour: np.ndarray) -> object:
        """The flat-shaded pyrender mesh of one frame: what ``pyrender.Mesh.from_trimesh(
        trimesh.Trimesh(vertices, faces, vertex_colors=...), smooth=False)`` builds (every
        face its own three vertices with the face's unit normal; per-vertex colours with
        its vertex-colour material), from the arrays directly. Building a trimesh first
        cost a third of each frame's time (its caches, its colour visuals) for the same
        buffers."""
        pr = self._pyrender
        colour = np.asarray(colour, np.float64)
        corners = (np.asarray(vertices, np.float64) * _CV_TO_GL)[self.faces]  # (F, 3, 3)
        cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        length = np.sqrt((cross * cross).sum(axis=1, keepdims=True))
        normals = np.divide(cross, length, out=np.zeros_like(cross), where=length > 0)
        if colour.ndim == 2:  # per vertex: RGBA bytes, as trimesh's vertex colours
            rgba = np.concatenate(
                [(colour * 255).round().astype(np.uint8), np.full((len(colour), 1), 255, np.uint8)],
                axis=1,
            )
            colours = rgba[self.faces].reshape(-1, 4)
            material = pr.MetallicRoughnessMaterial(
                alphaMode="BLEND",
                baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                metallicFactor=0.2,
                roughnessFactor=0.8,
            )
        else:
            colours = None
            material = pr.MetallicRoughnessMaterial(
                baseColorFactor=[*map(float, colour), 1.0], metallicFactor=0.1, roughnessFactor=0.8
            )
        primitive = pr.Primitive(
            positions=corners.reshape(-1, 3),
            normals=np.repeat(normals, 3, axis=0),
            color_0=colours,
            material=material,
            mode=pr.constants.GLTF.TRIANGLES,
        )
        return pr.Mesh(primitives=[primitive])

    def close(self) -> None:
        self.renderer.delete()
