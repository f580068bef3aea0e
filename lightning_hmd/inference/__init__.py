"""Inference on users' own videos: frames, person tracks, prediction, rendering."""
