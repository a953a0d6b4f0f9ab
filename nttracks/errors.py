"""Typed errors. The library raises these; the CLI turns them into a message and an exit code.

Every message names the offending value and says what to do about it.
"""

from __future__ import annotations


class NttracksError(Exception):
    """Base class of every error nttracks reports to a user."""

    exit_code = 1


class ConfigError(NttracksError):
    """A config file is missing, unreadable, has an unknown key or a value of the wrong type."""

    exit_code = 2


class UsageError(NttracksError):
    """Command-line arguments that cannot work together (e.g. ``--out`` is an existing file)."""

    exit_code = 2


class GenomeError(NttracksError):
    """A genome cannot be found, downloaded or read."""

    exit_code = 3


class MalformedFastaError(GenomeError):
    """A FASTA file that is not valid FASTA (no header, ragged lines, bad characters, ...)."""


class GenomeUnavailableError(GenomeError):
    """A registered genome is not cached and cannot be downloaded (e.g. offline)."""


class ChromosomeError(GenomeError):
    """A chromosome name that the genome does not have."""


class RegionsError(NttracksError):
    """A BED file given with --regions/--exclude that cannot be used."""

    exit_code = 2


class NothingToScoreError(NttracksError):
    """The selection leaves no base that a model can score (all N, excluded, or too short)."""

    exit_code = 2


class ModelError(NttracksError):
    """A model cannot be built or loaded, or was given input it cannot take."""

    exit_code = 4


class CheckpointError(ModelError):
    """A checkpoint lacks a tensor, has a tensor of the wrong shape, or has one nobody expects."""


class OutputError(NttracksError):
    """Outputs cannot be written (disk full, permissions, a file where a directory should be)."""

    exit_code = 5


class DeviceMemoryError(ModelError):
    """A batch (or one window) does not fit in the GPU's memory."""


class VariantsError(NttracksError):
    """A VCF, a variant option or a score file given to ``nttracks variants`` / ``ism`` that cannot be used."""

    exit_code = 2


class ExecutorError(NttracksError):
    """A cluster could not score a shard (a Ray worker lost again and again, workers with different weights)."""

    exit_code = 6
