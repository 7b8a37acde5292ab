"""The in-process ONNX Runtime embedder and its model registry.

ONNX Runtime's telemetry is turned off before any session exists (ORT reads this variable when it creates its
environment): otherwise it writes a device id under ~/.cache/Microsoft and resolves a collector's host name,
and the product promises to work offline and to send nothing anywhere.
"""

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
