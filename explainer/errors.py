"""One exception hierarchy for everything explain-graph reports to a user.

Every error carries a one-line message that says what went wrong and what to do;
the CLI prints it as is and exits with ``exit_code``.
"""

from __future__ import annotations


class ExplainerError(Exception):
    """Root of all explain-graph errors."""

    exit_code = 1

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback into the tool: the one-line message."""
        return [f"{type(self).__name__}: {self}"]


class ScriptNotFoundError(ExplainerError):
    """The script path does not exist or is not a file."""

    exit_code = 2


class ScriptSyntaxError(ExplainerError):
    """The user's script does not compile."""

    exit_code = 2


class UserScriptError(ExplainerError):
    """The user's script raised an exception; ``user_traceback`` holds its own frames."""

    exit_code = 3

    def __init__(self, message: str, user_traceback: str = "") -> None:
        super().__init__(message)
        self.user_traceback = user_traceback


class NoLossError(ExplainerError):
    """Nothing to explain: no backward() call and no scalar loss found."""

    exit_code = 4


class NonScalarLossError(ExplainerError):
    """backward() from a non-scalar tensor without an explicit gradient."""

    exit_code = 4


class StepNotReachedError(ExplainerError):
    """``--step N`` asked for a backward call the script never made."""

    exit_code = 4


class BackwardElsewhereError(ExplainerError):
    """The script called backward() only in threads other than the one it runs in."""

    exit_code = 4


class GraphvizError(ExplainerError):
    """Graphviz's ``dot`` is missing or failed."""

    exit_code = 5


class SchemaError(ExplainerError):
    """A graph.json file is not a graph this version can read."""

    exit_code = 2


class FoldError(ExplainerError):
    """A folded view was asked for that the graph cannot give (unknown module path)."""

    exit_code = 2


class ToolError(ExplainerError):
    """A command-line tool an output needs (rsvg-convert, pdftoppm) is missing or failed."""

    exit_code = 5


class OutputFolderError(ExplainerError):
    """The output folder cannot be used: empty ``--out``, a file in the way, not writable."""

    exit_code = 2


class OutputConflictError(OutputFolderError):
    """The output folder holds a file of the user's with a name the run would write."""

    exit_code = 2


class OutputWriteError(ExplainerError):
    """Writing the outputs failed part-way (a full disk); the folder keeps its previous files."""

    exit_code = 1


class ScriptExitedError(ExplainerError):
    """The script ended the process (``os._exit``) before the traced step was complete."""

    exit_code = 4


class TrainingOptionError(ExplainerError):
    """A bad ``--compare`` / ``--lr-sweep`` / ``--lr`` value, or one the script's optimizer cannot take."""

    exit_code = 2


class NoTrainingError(ExplainerError):
    """``--train`` and friends: the script never called ``optimizer.step()`` of a torch.optim optimizer."""

    exit_code = 4
