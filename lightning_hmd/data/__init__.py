"""Data: ground-truth clips and mocap for training and evaluation.

Modules: ``schema`` (the shard schema: sample dataclasses, member names, keys, encode and
decode with validation; imported by every writer and by the reader), ``shards``
(deterministic shard set writer and ``manifest.json``), ``check`` (validation of shard
sets against their manifests, ``lightning-hmd data check``), ``synthetic``.
"""
