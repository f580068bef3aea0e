"""Several feature sets per clip, one read per run: the schema's extra sets, the manifest's
record of them, the readers' choice by ``data.features``, the run's refusal of features it
does not name (mixed features refused), and ``lightning-hmd data features --add``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.clips import clip, write_clip_set, write_feature_sets_set

from lightning_hmd.commands import main
from lightning_hmd.config import ConfigError, load_config
from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.check import check_shards
from lightning_hmd.data.features import (
    FeatureError,
    add_features,
    build_feature_encoder,
    parse_encoder_id,
)
from lightning_hmd.data.loader import ReaderError, build_train_loader, probe_feature_sets
from lightning_hmd.data.manifest import read_manifest, sha256_file
from lightning_hmd.data.schema import SchemaError, decode_clip, encode_clip
from lightning_hmd.data.stream import FeatureSetError
from lightning_hmd.data.whole_tracks import build_track_loader
from lightning_hmd.train.data import check_inputs, feature_set_of
from lightning_hmd.train.fit import train

A, B, C = "small_cnn-d8-init0", "small_cnn-d16-init0", "resnet50_v2-d8-init3"
SETS = [(A, 8), (B, 16)]
T = 6


# ----------------------------------------------------------------------------- schema


def test_a_clip_with_two_extra_feature_sets_round_trips_exactly():
    s = clip("synthetic", "val", 0, 7, with_3d=True)
    rng = np.random.default_rng(0)
    more = {B: rng.normal(size=(7, 16)).astype(np.float16), C: rng.normal(size=(7, 3))}
    s.more_phi = {B: more[B], C: more[C].astype(np.float16)}
    members = encode_clip(s, "k")
    assert {"phi.npy", "phi_1.npy", "phi_2.npy"} <= set(members)
    assert json.loads(members["meta.json"])["more_encoder_ids"] == [B, C]
    back = decode_clip(members)
    assert back.feature_sets == ("test-encoder", B, C)
    assert list(back.more_phi) == [B, C]  # order kept: phi_1 is B, phi_2 is C
    for i in (B, C):
        assert back.more_phi[i].dtype == np.float16
        np.testing.assert_array_equal(back.more_phi[i], s.more_phi[i])
    np.testing.assert_array_equal(back.phi, s.phi)
    assert encode_clip(back, "k") == members  # byte for byte

    # a clip of one set is written as before: no meta field, no extra member
    plain = encode_clip(clip("synthetic", "val", 0, 7, with_3d=True), "k")
    assert "more_encoder_ids" not in json.loads(plain["meta.json"])
    assert not any(m.startswith("phi_") for m in plain)
    assert decode_clip(plain).more_phi == {}

    broken = dict(members)
    del broken["phi_2.npy"]
    with pytest.raises(SchemaError, match=r"missing member phi_2.npy .*more_encoder_ids\[1\]"):
        decode_clip(broken)
    stray = dict(members, **{"phi_3.npy": members["phi_2.npy"]})
    with pytest.raises(SchemaError, match=r"phi_3.npy: a feature set member that meta"):
        decode_clip(stray)
    bad = clip("synthetic", "val", 0, 7, with_3d=True)
    bad.more_phi = {B: more[B], C: np.full((6, 3), 1, np.float16)}
    with pytest.raises(SchemaError, match=r"phi_2.npy: expected shape \(7, \*\), got \(6, 3\)"):
        encode_clip(bad, "k")
    bad.more_phi = {B: np.full((7, 16), np.inf, np.float16)}
    with pytest.raises(SchemaError, match=r"phi_1.npy: 112 non-finite"):
        encode_clip(bad, "k")
    bad.more_phi = {"test-encoder": more[B]}
    with pytest.raises(SchemaError, match="phi_1.npy: encoder id 'test-encoder' is the primary"):
        encode_clip(bad, "k")


def test_manifests_record_the_feature_sets_and_old_ones_still_read(tmp_path):
    write_feature_sets_set(tmp_path / "two", [2, 1], [8], SETS)
    assert read_manifest(tmp_path / "two").feature_sets == (A, B)
    assert check_shards(tmp_path / "two").ok  # the extra members are schema members
    write_clip_set(tmp_path / "old", [2], [8])  # a writer that records none
    assert read_manifest(tmp_path / "old").feature_sets == ()
    assert "feature_sets" not in json.loads((tmp_path / "old" / "manifest.json").read_text())
    # without the record, a set's first sample tells
    write_feature_sets_set(tmp_path / "unrecorded", [2], [8], SETS, record=False)
    probed = probe_feature_sets([tmp_path / "two", tmp_path / "old", tmp_path / "unrecorded"])
    assert list(probed.values()) == [(A, B), ("test-encoder",), (A, B)]
    assert parse_encoder_id("resnet50_v2-d2048-hmr_noS5-642561") == ("resnet50_v2", 2048)
    assert parse_encoder_id("test-encoder") is None


# ----------------------------------------------------------------------------- reading


def _train_loader(sets, **kw):
    args = dict(batch_size=4, seq_len=T, num_workers=0, rank=0, world_size=1, seed=0,
                inputs="features", img_size=16, augment=AugmentConfig(enabled=False),
                num_fake_poses=10, batches_per_epoch=3)  # fmt: skip
    args.update(kw)
    return build_train_loader(sets, [1.0], [], **args)


@pytest.mark.parametrize("chosen", [A, B])
def test_a_set_holding_two_feature_sets_trains_and_validates_on_either(tmp_path, chosen):
    train_phi = write_feature_sets_set(tmp_path / "tr", [3, 2], [12, 9], SETS, split="train")
    val_phi = write_feature_sets_set(tmp_path / "val", [2, 1], [7, 10], SETS)
    dim = dict(SETS)[chosen]
    windows = 0
    for b in _train_loader([tmp_path / "tr"], features=chosen):
        assert b.clips.phi.shape == (4, T, dim) and b.clips.phi.dtype == torch.float16
        for i, (key, start) in enumerate(zip(b.info.key, b.info.start.tolist(), strict=True)):
            want = train_phi[key][chosen][start : start + T]
            np.testing.assert_array_equal(b.clips.phi[i].numpy(), want)  # exactly as stored
            windows += 1
    assert windows == 12
    loader = build_track_loader([tmp_path / "val"], rank=0, world_size=1, num_workers=0,
                                inputs="features", img_size=16, features=chosen)  # fmt: skip
    items = list(loader)
    assert sorted(it.key for it in items) == sorted(val_phi)
    for it in items:
        np.testing.assert_array_equal(it.phi, val_phi[it.key][chosen])
        assert it.sample.more_phi == {} and it.sample.phi is None  # nothing else travels

    cfg = _cfg(tmp_path, [tmp_path / "tr"], [tmp_path / "val"], features=chosen, feat_dim=dim)
    check_inputs(cfg)  # the run accepts the sets
    assert feature_set_of(cfg) == chosen


def test_readers_refuse_a_set_they_are_not_given(tmp_path):
    write_feature_sets_set(tmp_path / "val", [2], [8], SETS)
    kw = dict(rank=0, world_size=1, num_workers=0, inputs="features", img_size=16)
    with pytest.raises(FeatureSetError, match=rf"data.features={C} but the clip holds the "
                       rf"feature sets {A}, {B}"):  # fmt: skip
        list(build_track_loader([tmp_path / "val"], features=C, **kw))
    with pytest.raises(FeatureSetError, match=r"holds 2 feature sets .* set data.features"):
        list(build_track_loader([tmp_path / "val"], **kw))
    # the training reader refuses it as it reads the clip, naming the shard and the key
    with pytest.raises(FeatureSetError, match=r"val-000000.tar \[synthetic__seq000__t0000_c0000\]"
                       r": the clip holds 2 feature sets .* set data.features"):  # fmt: skip
        next(iter(_train_loader([tmp_path / "val"])))
    write_feature_sets_set(tmp_path / "one", [1], [8], SETS[:1])
    (item,) = list(build_track_loader([tmp_path / "one"], **kw))  # one set: read without a name
    np.testing.assert_array_equal(item.phi.shape, (8, 8))


# ----------------------------------------------------------------------------- refusal


def _cfg(tmp_path, train_sets, val_sets, *, features="", encoder="small_cnn", feat_dim=8,
         extra=()):  # fmt: skip
    return load_config("tiny", overrides=[
        "data.inputs=features", "data.train_weights=[]",
        *([f"data.features={features}"] if features else []),
        f"model.encoder={encoder}", f"model.feat_dim={feat_dim}", "model.temporal.num_groups=8",
        f"data.train_sets=[{','.join(map(str, train_sets))}]",
        f"data.val_sets=[{','.join(map(str, val_sets))}]", f"run.root={tmp_path / 'runs'}",
        *extra,
    ])  # fmt: skip


def test_mixed_features_refused(tmp_path, synthetic_body_dir):
    both = tmp_path / "both"
    write_feature_sets_set(both, [2], [8], SETS, split="train")
    only_a = tmp_path / "only_a"
    write_feature_sets_set(only_a, [2], [8], SETS[:1], split="train")
    only_c = tmp_path / "only_c"
    write_feature_sets_set(only_c, [2], [8], [(C, 8)], record=False)
    val = tmp_path / "val"
    write_feature_sets_set(val, [1], [8], SETS)

    # (a) two training sets of different encoders
    with pytest.raises(ConfigError, match=rf"features of different encoders \(data.train_sets "
                       rf".*only_a: {A}, data.train_sets .*only_c: {C}\)"):  # fmt: skip
        check_inputs(_cfg(tmp_path, [only_a, only_c], []))
    with pytest.raises(ReaderError, match="features of different encoders"):  # as before
        check_inputs(_cfg(tmp_path, [only_a, only_c], []))
    # (b) data.features naming a set one of the sets lacks
    with pytest.raises(ConfigError, match=rf"data.features={B} but data.train_sets .*only_a "
                       rf"holds the feature sets {A}: add it with"):  # fmt: skip
        check_inputs(_cfg(tmp_path, [both, only_a], [val], features=B, feat_dim=16))
    # (c) no name, a set holding two
    with pytest.raises(ConfigError, match=rf"data.val_sets .*val holds 2 feature sets \({A}, "
                       rf"{B}\) and data.features names none"):  # fmt: skip
        check_inputs(_cfg(tmp_path, [only_a], [val]))
    # (d) the selected set made by another encoder or width than the config's
    with pytest.raises(ConfigError, match=rf"model.feat_dim=8 but the run reads the feature set "
                       rf"{B} \(data.features={B}\), made by small_cnn at D=16: set "
                       r"model.feat_dim=16"):  # fmt: skip
        check_inputs(_cfg(tmp_path, [both], [val], features=B))
    with pytest.raises(ConfigError, match=rf"model.encoder=resnet50_v2 but the run reads the "
                       rf"feature set {A} \(the one set held"):  # fmt: skip
        check_inputs(_cfg(tmp_path, [only_a], [], encoder="resnet50_v2"))
    with pytest.raises(ConfigError, match=r"model.encoder=small_cnn .* made by resnet50_v2"):
        check_inputs(_cfg(tmp_path, [only_c], [], feat_dim=8))
    # the accepted choices
    assert feature_set_of(_cfg(tmp_path, [both, only_a], [val], features=A)) == A
    assert feature_set_of(_cfg(tmp_path, [only_a], [])) == A

    # a run refuses before its run directory exists
    from fixtures.clips import write_mocap_set

    write_mocap_set(tmp_path / "mocap", 8)
    extra = [f"body.model_dir={synthetic_body_dir}", f"data.mocap_sets=[{tmp_path / 'mocap'}]"]
    cfg = _cfg(tmp_path, [both, only_a], [val], features=B, feat_dim=16, extra=extra)
    with pytest.raises(ConfigError, match=rf"data.features={B} but data.train_sets .*only_a"):
        train(cfg, env={})
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- --add


def _features(images: Path, out: Path, *extra: str) -> int:
    return main(["data", "features", "--in", str(images), "--out", str(out), "--preset", "tiny",
                 "--encoder", "small_cnn", "--img-size", "32", "--copies", "2",
                 "--batch-frames", "8", "--no-progress", *extra])  # fmt: skip


def _clips(set_dir: Path) -> dict:
    from lightning_hmd.data.features import _members

    return {k: decode_clip(m) for k, m in _members(set_dir, read_manifest(set_dir))}


def _state(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_data_features_add_end_to_end(tmp_path, capsys):
    images = tmp_path / "images"
    write_clip_set(images / "train", [2, 1], [9, 7], split="train", jpeg=True)
    write_clip_set(images / "val", [2], [8], split="val", jpeg=True)
    feats = tmp_path / "feats"
    assert _features(images, feats, "--feat-dim", "8") == 0
    assert read_manifest(feats / "train").feature_sets == (A,)
    before = {s: _clips(feats / s) for s in ("train", "val")}
    # the same sets written by the second encoder alone: what the added set must equal
    assert _features(images, tmp_path / "ref", "--feat-dim", "16") == 0
    capsys.readouterr()

    assert _features(images, feats, "--feat-dim", "16", "--add") == 0
    printed = capsys.readouterr().out
    assert f"features {B} (D=16, 32 px crops) added to the feature sets at" in printed
    assert main(["data", "check", str(feats)]) == 0
    for s in ("train", "val"):
        assert read_manifest(feats / s).feature_sets == (A, B)
        after, ref = _clips(feats / s), _clips(tmp_path / "ref" / s)
        assert list(after) == list(before[s])  # same keys (train: two copies per clip), order
        assert len(after) == (6 if s == "train" else 2)
        for key, c in after.items():
            assert c.feature_sets == (A, B)
            np.testing.assert_array_equal(c.phi, before[s][key].phi)  # the old set untouched
            np.testing.assert_array_equal(c.more_phi[B], ref[key].phi)  # the new one exact
            np.testing.assert_array_equal(c.kp2d, ref[key].kp2d)  # the same copies
    assert [m.samples for m in read_manifest(feats / "train").shards] == [
        m.samples for m in read_manifest(tmp_path / "ref" / "train").shards
    ]

    # a run reads either
    assert feature_set_of(_cfg(tmp_path, [feats / "train"], [feats / "val"], features=B,
                               feat_dim=16)) == B  # fmt: skip

    # a second add of the same encoder is refused and leaves the sets as they are
    state = _state(feats)
    assert _features(images, feats, "--feat-dim", "16", "--add") == 2
    assert f"already holds the feature set {B}" in capsys.readouterr().err
    assert _state(feats) == state
    # --overwrite writes it again, to the same bytes
    assert _features(images, feats, "--feat-dim", "16", "--add", "--overwrite") == 0
    assert _state(feats) == state
    # augmented copies drawn with another seed are not those of the set: refused
    assert _features(images, feats, "--feat-dim", "4", "--seed", "1", "--add") == 2
    assert "differs from the copy made now" in capsys.readouterr().err
    assert {k: v for k, v in _state(feats).items() if not k.startswith(".")} == state


def test_an_interrupted_add_leaves_the_old_set_intact(tmp_path):
    images = tmp_path / "images"
    write_clip_set(images, [2, 2], [5], split="val", jpeg=True)
    feats = tmp_path / "feats"
    assert _features(images, feats, "--feat-dim", "8") == 0
    state = _state(feats)
    net, enc_id = build_feature_encoder("small_cnn", 16, None, seed=0)
    calls = []

    class Killed(torch.nn.Module):  # the process dies in its second encoder call
        def forward(self, x):
            calls.append(len(x))
            if len(calls) == 2:
                raise RuntimeError("killed")
            return net(x)

    kw = dict(img_size=32, batch_frames=8, progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        add_features(images, feats, Killed(), enc_id, **kw)
    assert _state(feats) == state  # the set as it was; the new one, unfinished, beside it
    assert not (tmp_path / ".feats.add.tmp" / "manifest.json").exists()
    assert read_manifest(feats).feature_sets == (A,)
    assert probe_feature_sets([feats])[str(feats)] == (A,)
    # the next add starts again and completes
    out = add_features(images, feats, net, enc_id, **kw)
    assert out["."].feature_sets == (A, B)
    assert not any(p.name.startswith(".feats") for p in tmp_path.iterdir())

    # a swap interrupted between its renames: the old set comes back before the next add
    os.replace(feats, tmp_path / ".feats.replaced")
    with pytest.raises(FeatureError, match=f"already holds the feature set {B}"):
        add_features(images, feats, net, enc_id, **kw)
    assert read_manifest(feats).feature_sets == (A, B)
    # a set to add to must exist, with features
    with pytest.raises(FeatureError, match="no complete feature set to add to"):
        add_features(images, tmp_path / "nothing", net, enc_id, **kw)
    assert check_shards(feats).ok
