"""Exception types the pipeline raises on purpose.

Every message is written for the person running the graph: it names the bad input (a file, a
package, a widget value) and says what to do. ComfyUI shows ``str(exc)`` in its error dialog, so
nothing else is needed to surface them there.
"""

from __future__ import annotations


class IntentTunerError(Exception):
    """Base class: an expected failure whose message is meant for the user as-is."""


class MissingDependencyError(IntentTunerError, ImportError):
    """An optional Python package that a feature needs is not installed."""

    def __init__(self, package: str, feature: str, pip_name: str | None = None):
        self.package = package
        self.feature = feature
        pip_name = pip_name or package
        super().__init__(
            f"{feature} needs the Python package '{package}', which is not installed in the "
            f"Python that runs ComfyUI. Install it with: python -m pip install {pip_name} "
            "(use ComfyUI's own python, e.g. python_embeded\\python.exe on the portable build), "
            "then restart ComfyUI."
        )


class WeightsError(IntentTunerError):
    """Base for problems with a weight file or folder."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weight file is neither on disk nor obtainable right now."""


class OfflineError(WeightsNotFoundError):
    """A weight file is missing and cannot be downloaded (no network, or downloads disabled)."""


class DownloadError(WeightsError):
    """A download started but did not produce a usable file."""


class ChecksumMismatchError(DownloadError):
    """A downloaded file's checksum differs from the one it must have."""


class WeightsCorruptError(WeightsError):
    """A weight file exists but cannot be read (truncated, corrupt, not a checkpoint at all)."""


class WrongModelFamilyError(WeightsError):
    """A weight file is readable but belongs to another kind of model."""


class ModelsFolderError(WeightsError, PermissionError):
    """A models folder cannot be created or written to."""


class InputError(IntentTunerError, ValueError):
    """A node input or library argument has a value that cannot be used."""


class LLMError(IntentTunerError):
    """An LLM endpoint could not be used: unreachable, slow, refusing, or answering nonsense."""


class LLMUnavailableError(LLMError):
    """The endpoint cannot answer at all (unreachable, timed out, key rejected, out of quota):
    asking it again in the same run would fail the same way."""


class TrainingError(IntentTunerError):
    """Training stopped before its end: the message says why, which checkpoint is the last good
    one, and how to go on from it."""


class TrainingDivergedError(TrainingError):
    """The loss became NaN or infinite; training stopped and kept the last good checkpoint."""


class DiskFullError(TrainingError, OSError):
    """A checkpoint or LoRA file could not be written (disk full / quota); nothing earlier was
    touched, and the partial file was removed."""
