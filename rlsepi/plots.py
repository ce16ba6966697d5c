"""Figures from result objects. Each function takes ``ax=None`` and returns the Axes.

matplotlib and seaborn are imported inside the functions so that ``import rlsepi`` stays
fast; the non-interactive Agg backend is used when nothing else is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from rlsepi.parameters import Target

__all__ = [
    "prevalence_by_age_sex",
    "pregnancy_by_trimester",
    "prs_distribution",
    "prevalence_by_group",
    "forest",
    "roc_curves",
    "calibration_curves",
]

PALETTE = {"female": "#b2182b", "male": "#2166ac", "all": "#404040"}


def _axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.2)) -> Axes:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _errorbars(ax: Axes, x: np.ndarray, t: pd.DataFrame, color: str, label: str, offset: float = 0.0) -> None:
    y = 100 * t["prevalence"].to_numpy()
    # clip: with 0 cases a CI bound can sit a rounding error on the wrong side of the estimate
    err = 100 * np.clip(np.vstack([t["prevalence"] - t["ci_lower"], t["ci_upper"] - t["prevalence"]]), 0, None)
    ax.errorbar(x + offset, y, yerr=err, fmt="o-", color=color, label=label, capsize=2, lw=1.4, ms=4)


def prevalence_by_age_sex(
    by_age_sex: pd.DataFrame,
    *,
    by_age: pd.DataFrame | None = None,
    prevalence_target: Target | None = None,
    peak_band: str | None = None,
    peak_target: Target | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Prevalence (%) by 5-year age band, women and men (and all), with 95% CIs.

    The target prevalence band is shaded; the peak age band and the target age range of
    the peak are marked.
    """
    ax = _axes(ax)
    bands = list(dict.fromkeys(by_age_sex["age_band"].astype(str)))
    pos = {b: i for i, b in enumerate(bands)}
    for sex, off in (("female", -0.12), ("male", 0.12)):
        t = by_age_sex[by_age_sex["sex"].astype(str) == sex]
        _errorbars(ax, np.array([pos[b] for b in t["age_band"].astype(str)]), t, PALETTE[sex], sex, off)
    if by_age is not None:
        _errorbars(ax, np.array([pos[b] for b in by_age["age_band"].astype(str)]), by_age, PALETTE["all"], "all")
    if prevalence_target is not None:
        ax.axhspan(100 * prevalence_target.low, 100 * prevalence_target.high, color="#999999", alpha=0.15,
                   label=f"target band, all ages ({100 * prevalence_target.low:g}-{100 * prevalence_target.high:g}%)")
    if peak_target is not None:
        lo = [i for b, i in pos.items() if int(b.split("-")[0]) >= peak_target.low]
        hi = [i for b, i in pos.items() if int(b.split("-")[-1].rstrip("+")) <= peak_target.high]
        if lo and hi:
            ax.axvspan(min(lo) - 0.5, max(hi) + 0.5, color="#fdb863", alpha=0.15,
                       label=f"target ages of the peak ({peak_target.low:g}-{peak_target.high:g})")
    if peak_band is not None and peak_band in pos:
        ax.axvline(pos[peak_band], color="#e66101", ls="--", lw=1.2, label=f"peak band {peak_band}")
    ax.set_xticks(range(len(bands)), bands, rotation=45, ha="right")
    ax.set_xlabel("age band (years)")
    ax.set_ylabel("RLS prevalence (%)")
    ax.legend(fontsize=8, ncol=2, loc="upper left")
    return ax


def pregnancy_by_trimester(table: pd.DataFrame, targets: Sequence[Target], *, ax: Axes | None = None) -> Axes:
    """Prevalence in pregnancy by trimester with 95% CIs, against the published figures and bands."""
    ax = _axes(ax, (5.5, 4.0))
    from matplotlib.patches import Rectangle

    x = np.arange(1, len(table) + 1)
    _errorbars(ax, x, table, PALETTE["female"], "cohort (95% CI)")
    for k, t in enumerate(targets, start=1):
        ax.add_patch(Rectangle((k - 0.3, 100 * t.low), 0.6, 100 * (t.high - t.low), color="#999999", alpha=0.2,
                               label="target band" if k == 1 else None))
        ax.plot([k - 0.3, k + 0.3], [100 * t.value] * 2, color="black", lw=1.5,
                label="published (Chen 2018)" if k == 1 else None)
    ax.set_xticks(x, [f"trimester {k}" for k in x])
    ax.set_ylabel("RLS prevalence (%)")
    ax.set_xlim(0.4, len(table) + 0.6)
    ax.legend(fontsize=8, loc="upper left")
    return ax


def prs_distribution(z: np.ndarray, case: np.ndarray, *, ax: Axes | None = None) -> Axes:
    """Distribution of the standardised PRS in cases and non-cases (density histograms)."""
    ax = _axes(ax, (5.5, 4.0))
    z = np.asarray(z, dtype=float)
    case = np.asarray(case, dtype=bool)
    values = np.unique(z)
    # a short score takes few values: one bar per value reads better than arbitrary bins
    edges = (np.concatenate([[values[0] - 0.05], (values[:-1] + values[1:]) / 2, [values[-1] + 0.05]])
             if values.size <= 120 else 40)
    ax.hist(z[~case], bins=edges, density=True, histtype="step", lw=1.5, color=PALETTE["all"], label="no RLS")
    ax.hist(z[case], bins=edges, density=True, histtype="step", lw=1.5, color=PALETTE["female"], label="RLS")
    ax.set_xlabel("polygenic risk score (SD from the population mean)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return ax


def prevalence_by_group(table: pd.DataFrame, group: str, *, xlabel: str, ax: Axes | None = None) -> Axes:
    """Prevalence (%) with 95% CIs for the ordered groups in column ``group``."""
    ax = _axes(ax, (5.5, 4.0))
    labels = table[group].astype(str).tolist()
    _errorbars(ax, np.arange(len(labels)), table, PALETTE["all"], "prevalence (95% CI)")
    ax.set_xticks(range(len(labels)), [lab.split(" (")[0] for lab in labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("RLS prevalence (%)")
    return ax


def forest(odds: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Forest plot: columns ``label``, ``or``, ``ci_lower``, ``ci_upper`` (and ``model``)."""
    ax = _axes(ax, (7.0, 0.35 * len(odds) + 1.2))
    y = np.arange(len(odds))[::-1]
    colors = dict(zip(dict.fromkeys(odds.get("model", pd.Series(["model"] * len(odds)))),
                      ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]))
    for yi, (_, r) in zip(y, odds.iterrows()):
        c = colors.get(r.get("model", "model"), "black")
        ax.plot([r["ci_lower"], r["ci_upper"]], [yi, yi], color=c, lw=1.5)
        ax.plot(r["or"], yi, "s", color=c, ms=5)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = float(odds["ci_lower"].min()), float(odds["ci_upper"].max())
    ticks = [t for t in (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10, 20) if lo / 1.2 <= t <= hi * 1.2]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_yticks(y, [f"{r.get('model', '')} {r['label']}".strip() for _, r in odds.iterrows()], fontsize=8)
    ax.set_xlabel("odds ratio (95% CI, log scale)")
    return ax


def roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], *, ax: Axes | None = None) -> Axes:
    """ROC curves: name -> (false-positive rate, true-positive rate, AUC)."""
    ax = _axes(ax, (4.8, 4.5))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=1.4, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def calibration_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, ax: Axes | None = None) -> Axes:
    """Calibration: name -> (mean predicted risk, observed prevalence) per risk group."""
    ax = _axes(ax, (4.8, 4.5))
    top = 0.0
    for name, (pred, obs) in curves.items():
        ax.plot(100 * np.asarray(pred), 100 * np.asarray(obs), "o-", ms=3, lw=1.2, label=name)
        top = max(top, float(np.max(pred)), float(np.max(obs)))
    ax.plot([0, 100 * top], [0, 100 * top], color="grey", ls=":", lw=1)
    ax.set_xlabel("predicted risk (%)")
    ax.set_ylabel("observed prevalence (%)")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def to_png(ax: Axes, **kwargs: Any) -> bytes:
    """The Axes' figure as PNG bytes (and the figure closed)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=110, metadata={"Software": None}, **kwargs)
    plt.close(ax.figure)
    return buf.getvalue()
