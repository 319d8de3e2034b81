"""Imported once by the fork server that training runs are forked from (`explainer.training.runner`).

What every run imports anyway: torch, and ``torch._dynamo``, which the first
construction of any torch.optim optimizer loads (seconds). Nothing here starts a
thread, so forking after it is safe.
"""

from __future__ import annotations

import numpy  # noqa: F401
import torch
import torch._dynamo
import torch.optim  # noqa: F401

from .. import run, trace  # noqa: F401
from . import hooks, record, replay, worker  # noqa: F401
