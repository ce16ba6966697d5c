"""The report: one self-contained HTML page with figures, and ``summary.json`` for machines.

:func:`analyse` calls the analysis modules and collects their result objects;
:func:`summarise` turns them into one JSON-ready mapping, which holds every number the
page shows (the page is rendered from that mapping alone, so nothing can appear in the
HTML that the JSON lacks); :func:`write_report` draws the figures and writes the files.
The report computes no statistics itself.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlsepi import __version__, descriptive, polygenic, power, prevalence, risk, risk_models
from rlsepi.errors import DataValidationError, OutputExistsError, RLSEpiError
from rlsepi.io import round_floats, to_jsonable
from rlsepi.parameters import DEFAULT, Parameters
from rlsepi.targets import TargetCheck, check_targets

__all__ = ["Analysis", "analyse", "summarise", "write_report", "check_report_dir", "render_html", "EXAMPLES",
           "SUMMARY_DIGITS"]

SUMMARY_DIGITS = 6
"""Significant digits of every computed float in ``summary.json`` (and so on the page, which is
rendered from it). Between CPUs (numpy's vector ``exp``/``log``, BLAS threads) the analyses
differ by at most about 1e-11 relative (measured: 6e-12, an extreme p-value); six digits are
five orders of magnitude above that, and above any precision the page shows. The inputs under
``provenance`` (seed, parameters as given) are written unchanged."""

EXAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("A pregnant woman of 34 in the third trimester with low ferritin (20 µg/L), genotypes unknown",
     {"age": 34, "sex": "female", "pregnant": True, "trimester": 3, "ferritin": 20.0}),
    ("A man of 65 with two MEIS1 risk alleles (rs2300478 GG), other genotypes and ferritin unknown",
     {"age": 65, "sex": "male", "pregnant": False, "genotypes": {"rs2300478": "GG"}}),
)
"""The two worked examples of individual illustrative risk."""


@dataclass(frozen=True)
class Analysis:
    """Every result object the report shows."""

    targets: TargetCheck | None
    crude: prevalence.Prevalence
    clinically_significant: prevalence.Prevalence | None
    by_age_sex: prevalence.PrevalenceTable
    by_age: prevalence.PrevalenceTable
    by_sex: prevalence.PrevalenceTable
    standardised: dict[str, prevalence.Standardised]
    or_crude: prevalence.OddsRatio
    or_mh: prevalence.MantelHaenszel
    or_adjusted: prevalence.ModelOddsRatio
    peak: prevalence.PeakBand
    peak_smooth: prevalence.PeakAge | str
    pregnancy: prevalence.PrevalenceTable | None
    table_one: descriptive.TableOne
    prs: polygenic.PRSResult
    prs_z: np.ndarray = field(repr=False)
    case: np.ndarray = field(repr=False)
    prs_groups: prevalence.PrevalenceTable
    models: risk_models.NestedFit
    examples: tuple[tuple[str, risk.IndividualRisk], ...]
    params: Parameters
    provenance: dict[str, Any]


def analyse(df: pd.DataFrame, *, params: Parameters = DEFAULT, provenance: dict[str, Any] | None = None,
            rng: int = 0) -> Analysis:
    """Run every analysis of the package on a cohort (simulated or the user's, harmonised).

    Parameters
    ----------
    df : DataFrame
        A cohort table (see :mod:`rlsepi.schema`).
    params : Parameters
        Targets and published figures.
    provenance : dict
        Version, seed, input file and its hash, command: reported as given.
    rng : int
        Seed of the peak band's bootstrap interval and of the cross-validation folds (the smooth
        peak's Fieller interval draws nothing).
    """
    has_targets = {"pregnant", "trimester", "rls_clinically_significant"} <= set(df.columns)
    pregnant = df[df["pregnant"].astype(bool)] if "pregnant" in df else df.iloc[:0]
    prs = polygenic.score_genotypes(polygenic.cohort_genotypes(df))
    z = prs.scores["z"].to_numpy()
    groups = descriptive.quantile_groups(pd.Series(z, index=df.index), q=5, name="prs_quintile")
    return Analysis(
        targets=check_targets(df, params) if has_targets else None,
        crude=prevalence.crude(df),
        clinically_significant=prevalence.crude(df, outcome="rls_clinically_significant")
        if "rls_clinically_significant" in df else None,
        by_age_sex=prevalence.stratified(df, ["sex", "age_band"]),
        by_age=prevalence.stratified(df, ["age_band"]),
        by_sex=prevalence.stratified(df, ["sex"]),
        standardised={s: prevalence.standardised(df, standard=s) for s in ("esp2013", "who2000", "us2000")},
        or_crude=prevalence.odds_ratio(df),
        or_mh=prevalence.mantel_haenszel(df),
        or_adjusted=prevalence.adjusted_odds_ratio(df, adjust=("age",), age_terms="quadratic"),
        peak=prevalence.peak_band(df, rng=rng),
        peak_smooth=_smooth_peak(df),
        pregnancy=prevalence.stratified(pregnant, ["trimester"]) if len(pregnant) else None,
        table_one=descriptive.table_one(df, params=params),
        prs=prs,
        prs_z=z,
        case=df["rls"].astype(bool).to_numpy(),
        prs_groups=prevalence.stratified(df.assign(prs_quintile=groups), ["prs_quintile"]),
        models=risk_models.fit_nested(df, random_state=rng, params=params),
        examples=tuple((label, risk.individual_risk(**kw, params=params)) for label, kw in EXAMPLES),
        params=params,
        provenance={"source": "a cohort passed from Python", "version": __version__, **(provenance or {})},
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype) or out[c].dtype == object:
            out[c] = out[c].astype(str)
    return to_jsonable(out.to_dict(orient="records"))


def _smooth_peak(df: pd.DataFrame) -> prevalence.PeakAge | str:
    """The smooth peak age, or why there is none (a cohort whose prevalence only rises or only
    falls with age has no peak: the page says so instead of an estimate)."""
    try:
        return prevalence.peak_age(df)
    except DataValidationError as exc:
        if "does not rise and fall with age" not in str(exc):
            raise
        return str(exc)


def _as_dict(obj: Any, drop: tuple[str, ...] = ("table", "tables", "curve", "coefficients")) -> dict[str, Any]:
    d = {k: v for k, v in dataclasses.asdict(obj).items() if k not in drop and not isinstance(v, pd.DataFrame)}
    return to_jsonable(d)


def summarise(a: Analysis) -> dict[str, Any]:
    """Every number of the report as one JSON-ready mapping (no timestamps: same seed, same bytes).

    Every computed float is rounded to :data:`SUMMARY_DIGITS` significant digits
    (:func:`rlsepi.io.round_significant`), so that the same cohort gives the same bytes on
    every CPU; ``provenance`` (the inputs) is kept as given.
    """
    models = a.models.to_dict()
    summary: dict[str, Any] = {
        "rlsepi": {"version": __version__, "kind": "report"},
        "provenance": to_jsonable(a.provenance),
        "targets": None if a.targets is None else {
            "passed": a.targets.passed, "failed": a.targets.failed, "inconclusive": a.targets.inconclusive,
            "verdict": a.targets.verdict, "results": _records(a.targets.to_frame())},
        "prevalence": {
            "crude": _as_dict(a.crude),
            "clinically_significant": None if a.clinically_significant is None else _as_dict(a.clinically_significant),
            "by_age_sex": _records(a.by_age_sex.to_frame()),
            "by_age": _records(a.by_age.to_frame()),
            "by_sex": _records(a.by_sex.to_frame()),
            "standardised": {k: _as_dict(v) for k, v in a.standardised.items()},
        },
        "sex_odds_ratio": {
            "crude_woolf": _as_dict(a.or_crude),
            "mantel_haenszel": _as_dict(a.or_mh), "adjusted_logistic": _as_dict(a.or_adjusted),
        },
        "peak": {"band": _as_dict(a.peak),
                 "smooth": _as_dict(a.peak_smooth) if not isinstance(a.peak_smooth, str)
                 else {"not_estimable": a.peak_smooth}},
        "pregnancy": None if a.pregnancy is None else [
            {**row, "published": t.value, "low": t.low, "high": t.high}
            for row, t in zip(_records(a.pregnancy.to_frame()), a.params.targets.pregnancy)],
        "table_one": [{"characteristic": r["characteristic"], "statistic": r["statistic"],
                       "values": to_jsonable(r["values"]), "text": r["text"]} for r in a.table_one.rows],
        "prs": {
            "score": a.prs.score_name, "imputation": a.prs.imputation,
            "coverage": _records(a.prs.coverage), "match_log": _records(a.prs.match_log),
            "by_quintile": _records(a.prs_groups.to_frame()),
            "mean_z": {"RLS": float(np.mean(a.prs_z[a.case])), "no RLS": float(np.mean(a.prs_z[~a.case]))},
            "reference": {w: {"description": r.description, "mean": r.mean, "sd": r.sd}
                          for w, r in a.prs.references.items()},
        },
        "models": {k: v for k, v in models.items() if k != "definitions"},
        "examples": [{"label": label, **r.to_dict()} for label, r in a.examples],
        "planning": power.planning_summary(a.params, n=len(a.case)),
    }
    provenance = summary.pop("provenance")
    return {**round_floats(summary, SUMMARY_DIGITS), "provenance": provenance}


# --- rendering -------------------------------------------------------------------------


def _figures(a: Analysis) -> dict[str, bytes]:
    from rlsepi import plots

    t = a.params.targets
    figs = {
        "prevalence_by_age_sex": plots.prevalence_by_age_sex(
            a.by_age_sex.to_frame(), by_age=a.by_age.to_frame(), prevalence_target=t.prevalence,
            peak_band=a.peak.band, peak_target=t.peak_age),
        "prs_distribution": plots.prs_distribution(a.prs_z, a.case),
        "prs_quintiles": plots.prevalence_by_group(a.prs_groups.to_frame(), "prs_quintile",
                                                   xlabel="PRS quintile group"),
    }
    if a.pregnancy is not None:
        figs["pregnancy"] = plots.pregnancy_by_trimester(a.pregnancy.to_frame(), t.pregnancy)
    rows = []
    for m in a.models.models:
        for r in m.coefficients.itertuples():
            if r.term != "const":
                rows.append({"model": m.name, "label": r.term, "or": r.odds_ratio, "ci_lower": r.or_lower,
                             "ci_upper": r.or_upper})
    figs["forest"] = plots.forest(pd.DataFrame(rows))
    y = a.case.astype(int)
    figs["roc"] = plots.roc_curves({m.name: (*descriptive.roc_points(y, m.fitted), m.metrics["auc"])
                                    for m in a.models.models})
    figs["calibration"] = plots.calibration_curves({m.name: descriptive.calibration_points(y, m.fitted)
                                                    for m in a.models.models})
    return {name: plots.to_png(ax) for name, ax in figs.items()}


def _fmt_pct(x: Any, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * float(x):.{digits}f}%"


def _fmt_num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{int(x):,}"
    return f"{float(x):.{digits}f}"


def _fmt_p(p: Any) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return prevalence.format_pvalue(float(p))


def render_html(summary: dict[str, Any], figures: dict[str, bytes]) -> str:
    """The HTML page from the summary and the PNG figures (embedded as data URIs)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rlsepi", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(pct=_fmt_pct, num=_fmt_num, pval=_fmt_p)
    images = {k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in figures.items()}
    return env.get_template("report.html.j2").render(s=summary, img=images)


def check_report_dir(out_dir: str | Path, *, force: bool = False) -> Path:
    """Refuse a report folder that cannot take the report, before any analysis runs.

    The folder may exist and hold other files; ``index.html`` and ``summary.json`` in it are
    replaced only with ``force``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RLSEpiError(f"output '{out}' is a file; give a folder for the report")
    if not force:
        existing = [n for n in REPORT_FILES if (out / n).exists()]
        if existing:
            raise OutputExistsError(f"report files already exist in '{out}' ({', '.join(existing)}); "
                                    "use --force to replace them")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise RLSEpiError(f"cannot write the report: folder '{parent}' does not exist; create it first")
    for folder in (out, out / "figures") if out.is_dir() else (parent,):
        if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
            raise RLSEpiError(f"cannot write the report: folder '{folder}' is not writable")
    if (out / "figures").exists() and not (out / "figures").is_dir():
        raise RLSEpiError(f"cannot write the report: '{out / 'figures'}' is a file; move it away")
    return out


REPORT_FILES = ("index.html", "summary.json")


def write_report(a: Analysis, out_dir: str | Path, *, force: bool = False) -> dict[str, Path]:
    """Write ``index.html``, ``summary.json`` and ``figures/*.png`` into ``out_dir``.

    Everything is written to a temporary folder beside ``out_dir`` first and moved into
    place only when complete. Existing report files are replaced only with ``force``, and
    only the files the report writes: other files in the folder (and in ``figures/``) are
    left alone.
    """
    out = check_report_dir(out_dir, force=force)
    parent = out.parent if str(out.parent) else Path(".")
    summary = summarise(a)
    figures = _figures(a)
    html = render_html(summary, figures)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        (tmp / "figures").mkdir()
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
        (tmp / "index.html").write_text(html, encoding="utf-8")
        for name, png in figures.items():
            (tmp / "figures" / f"{name}.png").write_bytes(png)
        out.mkdir(exist_ok=True)
        (out / "figures").mkdir(exist_ok=True)
        for name in figures:
            os.replace(tmp / "figures" / f"{name}.png", out / "figures" / f"{name}.png")
        for name in REPORT_FILES:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"html": out / "index.html", "summary": out / "summary.json", "figures": out / "figures"}
