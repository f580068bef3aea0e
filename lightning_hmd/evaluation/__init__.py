"""Evaluation: windowed prediction over whole clips and the field's metrics."""
