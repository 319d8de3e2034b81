"""Training over time: the whole run, optimizers compared, learning rates swept (``--train``,
``--compare``, ``--lr-sweep``).

`explain_training` runs the user's script once per run, each in a fresh process
(`runner`, `worker`), records every optimizer step with cheap hooks (`hooks`),
replays the first step's loss on a grid (`replay`, `surface`), and writes
``training.json`` (`record`), ``training.svg/png`` (`plots`) and ``training.mp4``
(`video`). Importing this package imports neither torch nor matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .spec import TrainingOptions

if TYPE_CHECKING:  # pragma: no cover
    from .explain import explain_training, run_training, write_training
    from .record import TrainingRecord, load_training

__all__ = ["TrainingOptions", "TrainingRecord", "explain_training", "load_training", "run_training", "write_training"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: `explain` brings in networkx, `record` numpy.
    if name in ("explain_training", "run_training", "write_training"):
        from . import explain

        return getattr(explain, name)
    if name in ("TrainingRecord", "load_training"):
        from . import record

        return getattr(record, name)
    raise AttributeError(f"module 'explainer.training' has no attribute {name!r}")
