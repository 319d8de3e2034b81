"""``python -m explainer``: the same command as ``explain-graph``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
