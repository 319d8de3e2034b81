"""Defaults shared by the command line, the Python API and the renderers, written once.

A plain module without imports, so the CLI can build its options (and ``--help``)
without loading networkx or torch.
"""

from __future__ import annotations

#: Diagram formats written by default.
FORMATS = ("svg", "png", "pdf")
#: Tensors with more entries are shown, and stored in graph.json, as a summary.
DEFAULT_MAX_ELEMENTS = 16
#: The diagram folds modules automatically above this many nodes (0: never).
DEFAULT_MAX_NODES = 30
#: Significant digits on screen.
DEFAULT_DIGITS = 4
