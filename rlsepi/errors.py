"""Exceptions and warnings raised by rlsepi.

Every error a user can cause derives from :class:`RLSEpiError`; the command line turns
these into a one-line message and a non-zero exit code instead of a traceback.
"""

from __future__ import annotations

__all__ = [
    "RLSEpiError",
    "DataValidationError",
    "ParameterError",
    "OutputExistsError",
    "SmallCellWarning",
    "DataQualityWarning",
    "InestimableTermWarning",
]


class RLSEpiError(Exception):
    """Base class of every error rlsepi raises on purpose."""


class DataValidationError(RLSEpiError, ValueError):
    """Input data (a cohort, a genotype or scoring file) does not meet the schema."""


class ParameterError(RLSEpiError, ValueError):
    """A parameter value or parameter file is not allowed."""


class OutputExistsError(RLSEpiError, FileExistsError):
    """An output file already exists and overwriting was not asked for."""


class SmallCellWarning(UserWarning):
    """A cell has too few cases or non-cases for a stable estimate."""


class DataQualityWarning(UserWarning):
    """The data are usable but something in them is doubtful (e.g. repeated person IDs allowed)."""


class InestimableTermWarning(UserWarning):
    """A model term the data cannot estimate (no variation, or collinear with others) was dropped."""
