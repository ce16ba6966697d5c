"""The counsellor's page and JSON API (``rlsepi serve``).

The web layer parses requests and renders results: every number comes from
:func:`rlsepi.risk.individual_risk`, every rule about the inputs from
:func:`rlsepi.risk.input_errors`, and genotypes from consumer files from
:func:`rlsepi.consumer.read_consumer_genotypes`. Nothing is written to disk or to logs, and
nothing is loaded from outside the package (a Content-Security-Policy says so to the browser).

Build the application with :func:`create_app`; serve it with uvicorn (``rlsepi serve``).
"""

from __future__ import annotations

from rlsepi.web.app import create_app

__all__ = ["create_app"]
