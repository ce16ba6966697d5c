"""The report: files, determinism, every number in the JSON, escaping, no external requests,
the --check exit code, and a real browser."""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlsepi import cohort, report
from rlsepi.cli import main
from rlsepi.parameters import DEFAULT, load_parameters
from rlsepi.parameters import STANDARD_POPULATIONS as DEFAULT_STANDARDS

N, SEED = 20_000, 5
TEMPLATE = Path(report.__file__).parent / "templates" / "report.html.j2"


def _build(out: Path) -> dict[str, Path]:
    df = cohort.simulate(N, rng=SEED)
    prov = {"source": f"simulated cohort, seed {SEED}", "seed": SEED, "n": N, "version": report.__version__,
            "parameters_sha256": DEFAULT.digest()}
    return report.write_report(report.analyse(df, provenance=prov, rng=SEED), out)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    return _build(tmp_path_factory.mktemp("report") / "r")


def test_report_files(built):
    summary = json.loads(built["summary"].read_text())
    assert summary["prevalence"]["crude"]["n"] == N
    # the headline card shows the crude prevalence of the summary
    crude = summary["prevalence"]["crude"]["prevalence"]
    assert re.search(rf"RLS, crude\s+{100 * crude:.2f}%", _visible_text(built["html"].read_text()))
    names = {p.stem for p in built["figures"].glob("*.png")}
    assert names >= {"prevalence_by_age_sex", "pregnancy", "prs_distribution", "prs_quintiles", "forest", "roc",
                     "calibration"}


def test_summary_is_identical_for_the_same_seed(built, tmp_path):
    again = _build(tmp_path / "again")
    assert again["summary"].read_bytes() == built["summary"].read_bytes()


def _visible_text(page: str) -> str:
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    page = re.sub(r'src="data:[^"]*"', " ", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _walk(x: Any, numbers: list[float], strings: list[str]) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            strings.append(str(k))
            _walk(v, numbers, strings)
    elif isinstance(x, list):
        for v in x:
            _walk(v, numbers, strings)
    elif isinstance(x, bool) or x is None:
        return
    elif isinstance(x, (int, float)):
        numbers.append(float(x))
    else:
        strings.append(str(x))


def test_every_number_on_the_page_is_in_the_summary(built):
    summary = json.loads(built["summary"].read_text())
    numbers: list[float] = []
    strings: list[str] = []
    _walk(summary, numbers, strings)
    static = TEMPLATE.read_text()
    text = " ".join(strings)
    missing = []
    for m in re.finditer(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(e[-+]\d+)?(%?)", _visible_text(built["html"].read_text())):
        token, exponent, pct = m.group(1), m.group(2), m.group(3)
        if exponent:  # a small p-value in scientific notation, 3 significant digits
            value = float(token + exponent)
            if not any(v and abs(v - value) <= 5e-3 * abs(value) for v in numbers):
                missing.append(token + exponent)
            continue
        if token in static or token in text:
            continue
        value = float(token.replace(",", ""))
        digits = len(token.split(".")[1]) if "." in token else 0
        scale = 100.0 if pct else 1.0
        if not any(round(scale * v, digits) == value or round(scale * abs(v), digits) == value for v in numbers):
            missing.append(token + pct)
    assert not missing, f"numbers on the page that summary.json lacks: {missing[:10]}"


def test_no_external_requests(built):
    page = built["html"].read_text()
    for attr in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attr.startswith(("data:", "#")), attr
    assert "http://" not in page and "https://" not in page
    assert "Content-Security-Policy" in page


def test_user_cohort_report_escapes_names_and_check_fails_on_missed_targets(tmp_path, capsys):
    params = tmp_path / "high.toml"
    params.write_text("[targets.prevalence]\nvalue = 0.13\nhigh = 0.15\n")
    df = cohort.simulate(30_000, rng=2, params=load_parameters(params))
    name = "<img src=x onerror=alert(1)>.csv"
    df.to_csv(tmp_path / name, index=False)
    code = main(["report", "--cohort", str(tmp_path / name), "--out", str(tmp_path / "r"), "--check"])
    out = capsys.readouterr().out
    assert code == 1 and "targets missed: prevalence" in out
    page = (tmp_path / "r" / "index.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.csv" in page
    # an existing report is not replaced without --force
    assert main(["report", "--cohort", str(tmp_path / name), "--out", str(tmp_path / "r")]) == 2


# --- a real browser ---------------------------------------------------------------------

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (CI installs them)",
)


@needs_browser
@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 900)])
def test_report_in_headless_chromium(built, tmp_path, width, height):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
                f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    if width < 500:  # headless windows are at least 500 px wide: emulate the phone instead
        opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": height,
                                                                           "pixelRatio": 3.0}})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(built["html"].resolve().as_uri())
        assert driver.execute_script("return window.innerWidth") == width
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.getBoundingClientRect().width])")
        assert len(images) >= 7
        for alt, complete, natural, shown in images:
            assert complete and natural > 0, f"figure did not load: {alt}"
            assert 0 < shown <= width, f"figure wider than the screen: {alt}"
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width + 1, "the page scrolls sideways"
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        shot = Path(os.environ.get("RLSEPI_SCREENSHOTS", tmp_path)) / f"report_{width}.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()


# --- the summary's numbers, recomputed here from the cohort by hand ---------------------


@pytest.fixture(scope="module")
def cohort_df():
    return cohort.simulate(N, rng=SEED)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def rounded(x):
    """An independently computed value as summary.json stores it: at SUMMARY_DIGITS significant
    digits (the same on every CPU); the comparison is then exact."""
    from rlsepi.io import round_significant
    from rlsepi.report import SUMMARY_DIGITS

    if isinstance(x, tuple):
        return tuple(round_significant(v, SUMMARY_DIGITS) for v in x)
    return round_significant(x, SUMMARY_DIGITS)


def test_summary_prevalences_recomputed(built, cohort_df):
    s = json.loads(built["summary"].read_text())
    df = cohort_df
    rls = df["rls"].astype(bool)
    crude = s["prevalence"]["crude"]
    assert (crude["n"], crude["cases"]) == (len(df), int(rls.sum()))
    assert crude["prevalence"] == rounded(rls.mean())
    assert (crude["ci_lower"], crude["ci_upper"]) == rounded(_wilson(int(rls.sum()), len(df)))
    by_sex = {r["sex"]: r for r in s["prevalence"]["by_sex"]}
    for sex in ("female", "male"):
        sub = rls[df["sex"] == sex]
        assert (by_sex[sex]["n"], by_sex[sex]["cases"]) == (len(sub), int(sub.sum()))
        assert (by_sex[sex]["ci_lower"], by_sex[sex]["ci_upper"]) == rounded(_wilson(int(sub.sum()), len(sub)))
    cs = s["prevalence"]["clinically_significant"]
    assert cs["cases"] == int(df["rls_clinically_significant"].sum())
    preg = df[df["pregnant"].astype(bool)]
    for row in s["pregnancy"]:
        sub = preg.loc[preg["trimester"] == row["trimester"], "rls"].astype(bool)
        assert (row["n"], row["cases"]) == (len(sub), int(sub.sum()))
    assert [r["published"] for r in s["pregnancy"]] == [t.value for t in DEFAULT.targets.pregnancy]


def test_summary_odds_ratio_and_standardised_recomputed(built, cohort_df):
    s = json.loads(built["summary"].read_text())
    df = cohort_df
    rls, fem = df["rls"].astype(bool), df["sex"] == "female"
    a, b = int((rls & fem).sum()), int((~rls & fem).sum())
    c, d = int((rls & ~fem).sum()), int((~rls & ~fem).sum())
    w = s["sex_odds_ratio"]["crude_woolf"]
    assert (w["exposed_cases"], w["exposed_noncases"], w["unexposed_cases"], w["unexposed_noncases"]) == (a, b, c, d)
    or_ = a * d / (b * c)
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert w["estimate"] == rounded(or_)
    assert (w["ci_lower"], w["ci_upper"]) == rounded(
        (or_ * math.exp(-1.959963984540054 * se), or_ * math.exp(1.959963984540054 * se)))
    # direct standardisation to ESP 2013: 5-year bands present in the data, weights renormalised
    esp = dict(DEFAULT_STANDARDS["esp2013"]["bands"])
    band = (df["age"] // 5) * 5
    prev = rls.groupby(band).mean()
    weights = prev.index.map(esp).to_numpy(dtype=float)
    expected = float((prev.to_numpy() * weights).sum() / weights.sum())
    assert s["prevalence"]["standardised"]["esp2013"]["adjusted"] == rounded(expected)


def test_summary_peak_band_and_table_one_columns(built, cohort_df):
    s = json.loads(built["summary"].read_text())
    df = cohort_df
    rls = df["rls"].astype(bool)
    band = (df["age"] // 5) * 5
    prev = rls.groupby(band).mean()
    assert s["peak"]["band"]["lower"] == int(prev.idxmax())
    assert s["peak"]["band"]["prevalence"] == rounded(prev.max())
    t1 = {r["characteristic"]: r for r in s["table_one"]}
    # the RLS column holds the cases and the no-RLS column the rest (not swapped)
    assert t1["people"]["values"] == {"RLS": [int(rls.sum())], "no RLS": [int((~rls).sum())], "overall": [len(df)]}
    freq_cases = df.loc[rls, "rs2300478"].mean() / 2
    freq_non = df.loc[~rls, "rs2300478"].mean() / 2
    assert t1["rs2300478 effect allele"]["values"]["RLS"][0] == rounded(freq_cases)
    assert t1["rs2300478 effect allele"]["values"]["no RLS"][0] == rounded(freq_non)


def test_page_columns_and_prs_means_not_swapped(built, cohort_df):
    s = json.loads(built["summary"].read_text())
    df = cohort_df
    rls = df["rls"].astype(bool).to_numpy()
    page = _visible_text(built["html"].read_text())
    # Table 1's first row on the page: people, n, then no RLS, RLS, overall in that order
    n_case, n_non = int(rls.sum()), int((~rls).sum())
    assert re.search(rf"people\s+n\s+{n_non:,}\s+{n_case:,}\s+{len(df):,}", page)
    # the PRS means: z is an affine function of the raw weighted allele count, so the ratio
    # (case mean - overall mean) / (non-case mean - overall mean) does not depend on the
    # standardisation; recompute it from ln(OR) x effect-allele counts
    raw = sum(np.log(locus.odds_ratio) * df[locus.rsid].to_numpy(dtype=float) for locus in DEFAULT.loci)
    ratio_raw = (raw[rls].mean() - raw.mean()) / (raw[~rls].mean() - raw.mean())
    mz = s["prs"]["mean_z"]
    overall = (n_case * mz["RLS"] + n_non * mz["no RLS"]) / len(df)
    assert (mz["RLS"] - overall) / (mz["no RLS"] - overall) == pytest.approx(ratio_raw, rel=1e-9, abs=0)
    assert mz["RLS"] > mz["no RLS"]
    assert f"{mz['RLS']:.3f} SD in cases, {mz['no RLS']:.3f} SD in non-cases" in page
