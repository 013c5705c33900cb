"""Shared test setup: the repository root on sys.path, MindSpore on the CPU, quiet logs."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402

ms.set_context(device_target=os.environ.get("DEVICE_TARGET", "CPU"))
