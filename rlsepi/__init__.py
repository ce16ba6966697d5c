"""rlsepi: epidemiology and genetics of Restless Legs Syndrome (Willis-Ekbom disease).

Calibrated synthetic cohorts, prevalence with confidence intervals, polygenic risk scores
and logistic risk models. Heavy modules (plotting) are imported lazily so that
``import rlsepi`` stays fast.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rlsepi")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from rlsepi.errors import DataValidationError, ParameterError, RLSEpiError  # noqa: E402

__all__ = ["__version__", "RLSEpiError", "DataValidationError", "ParameterError"]
