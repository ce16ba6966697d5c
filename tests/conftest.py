"""Shared test settings.

Hypothesis runs derandomised: the same examples on every run and every machine, so a
failure found once is found again (no random per-run seeds, no local example database
deciding what CI sees).
"""

from hypothesis import settings

settings.register_profile("rlsepi", derandomize=True, database=None, print_blob=True)
settings.load_profile("rlsepi")
