"""Deployment: export a model directory (exporter.py, at the input specs of signature.py) and
run what was exported (runtime.py; predictions from raw inputs in predictions.py)."""
