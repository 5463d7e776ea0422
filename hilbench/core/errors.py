"""The one hilbench exception tree.

``HilbenchError`` is the root. ``UserError`` and its subclasses are caused by what the user
gave us (a file, a name, a URL): the CLI prints their message on one line and exits with 2.
Errors raised by third-party libraries are mapped to this tree at the boundary with
``raise ... from exc`` so that the cause stays visible in logs.
"""

from __future__ import annotations


class HilbenchError(Exception):
    """Root of every error hilbench raises on purpose."""


class UserError(HilbenchError):
    """The input is wrong; the message says what to change."""


class ModelError(UserError):
    """A model file is missing, corrupt, or uses something hilbench cannot feed."""


class UnsupportedFormatError(ModelError):
    """No runner knows this model format."""


class CompressionError(ModelError):
    """A compression method does not recognise the model's structure (the message names the
    op it stopped at), or its parameters are out of range."""


class DatasetError(UserError):
    """A dataset file is missing, corrupt, or does not match the model's inputs."""


class DeviceError(UserError):
    """A device name, definition or preset is wrong."""


class UnknownDeviceError(DeviceError):
    """No registered device has this name."""


class DuplicateDeviceError(DeviceError):
    """A device with this name is already registered."""


class SettingsError(UserError):
    """A run setting (threads, shapes, durations ...) is invalid."""


class StoreError(HilbenchError):
    """The profile store failed."""


class StoreUnreachableError(StoreError, UserError):
    """The store URL cannot be opened (wrong URL, server down, no permission)."""


class SchemaTooNewError(StoreError, UserError):
    """The store was written by a newer hilbench; this one refuses to touch it."""


class NotAStoreError(StoreError, UserError):
    """The database holds tables that are not a hilbench store."""


class ImportFormatError(StoreError, UserError):
    """A file given to ``profiles import`` does not have the export layout."""


class PredictorError(UserError):
    """The predictor cannot do what was asked with the data it has (the message says what to
    measure or train first)."""


class ArtifactError(PredictorError):
    """A predictor file cannot be used: missing, damaged, or written by other versions."""


class IncompatibleMeasurementsError(HilbenchError):
    """Measurements taken in different environments must not be combined."""


class TransportError(HilbenchError):
    """Reaching a device failed (process could not start, connection lost, timeout)."""


class CommandTimeoutError(TransportError):
    """A command on a device ran past its timeout and was stopped."""


class AgentError(HilbenchError):
    """The agent on a device failed or answered something that is not a valid result."""


class NotYourJobError(StoreError):
    """A result for a job that is not the agent's to report: unknown, another device's, or
    leased to another agent. Retrying cannot help (unlike a write that failed)."""


class AgentRevokedError(StoreError, UserError):
    """An agent's registration was revoked (``bench agent revoke``)."""


def first_line(exc: BaseException) -> str:
    """A library's error message as one line of at most 300 characters, for the user."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
