"""The output folder: explain-graph replaces only files it can prove it wrote.

The contract, for every run into a folder:

* A manifest, ``.explain-graph.json``, lists the files the last run wrote with their
  sizes and SHA-256 hashes. A file with an output name that is not in it, or that
  differs from what it recorded, is the user's: the run stops before the script runs
  (`OutputConflictError`, exit 2) unless ``force`` names it. Old outputs this run does
  not make again are removed only when the manifest lists them unchanged.
* Outputs are rendered into a hidden staging folder *inside* the output folder, so the
  final switch is a set of same-filesystem renames (an output on another filesystem,
  behind a symlink or on a mount point works the same).
* The switch is journalled (``.explain-graph-switch.json``): what is replaced is moved
  aside first, the new files are moved in, and the new manifest is written last, which
  is the commit point. A failure part-way, or a run killed part-way, is rolled back (now,
  or by the next run into the folder), so the folder never mixes two runs.
* A lock file (``.explain-graph.lock``, ``flock``) makes a second run into the same
  folder wait for the first.

Only the names in `OUTPUT_FILES` and `OUTPUT_PATTERNS` are ever written; the hidden
files above are the tool's own. Modules: `names` (output names, proof of authorship),
`switch` (the journalled switch and its recovery), `folder` (one run's hold on the folder).
"""

from __future__ import annotations

from .folder import LOCK, OutputFolder, check_out_path, open_output
from .names import OUTPUT_FILES, OUTPUT_PATTERNS, file_digest, is_output_name, planned_outputs
from .switch import BACKUP_PREFIX, JOURNAL, MANIFEST, STAGING_PREFIX, SignalAfterCommit, recover

__all__ = [
    "BACKUP_PREFIX",
    "JOURNAL",
    "LOCK",
    "MANIFEST",
    "OUTPUT_FILES",
    "OUTPUT_PATTERNS",
    "STAGING_PREFIX",
    "OutputFolder",
    "SignalAfterCommit",
    "check_out_path",
    "file_digest",
    "is_output_name",
    "open_output",
    "planned_outputs",
    "recover",
]
