"""Datasets and out-of-core analyses (rlsepi.distributed), with and without a Dask cluster.

The reference for every out-of-core result is the in-memory result on the same rows (itself
checked against R and PLINK 2 in the other test modules): counts must be identical,
coefficients equal to 1e-9. The count-based estimators with ``freq=`` are checked against the
same estimators on the expanded rows, which come from an independent hand-built table.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlsepi import cohort, distributed, prevalence
from rlsepi.errors import OutputExistsError
from rlsepi.io import read_cohort
from rlsepi.targets import check_targets

ROOT = Path(__file__).resolve().parents[1]
BS = cohort.BLOCK_SIZE
N = 3 * BS + 1234  # four blocks, the last one short
SEED = 77
NEEDED = ["age", "sex", "pregnant", "trimester", "rls", "rls_clinically_significant"]
PLINK2 = ROOT / "tests" / "reference" / "plink2"  # the committed plink2 known answers
REAL = PLINK2 / "real"


def column_digests(table: pa.Table) -> dict[str, str]:
    """SHA-256 of each column's values (Arrow IPC of the column, chunks combined)."""
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        sink = pa.BufferOutputStream()
        t = pa.table({name: col})
        with pa.ipc.new_stream(sink, t.schema) as w:
            w.write_table(t)
        out[name] = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("single") / "c.parquet"
    cohort.write_cohort(path, N, seed=SEED)
    return path


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as c:
        yield c


# --- the house: imports run one way ----------------------------------------------------------


def _rlsepi_imports(module: str) -> set[str]:
    tree = ast.parse((ROOT / "rlsepi" / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlsepi"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("rlsepi"))
    return names


def test_io_imports_nothing_above_it():
    imported = _rlsepi_imports("io")
    assert not {n for n in imported if "cohort" in n or "polygenic" in n}, imported
    assert "rlsepi.io" in _rlsepi_imports("cohort")


def test_distributed_modules_import_one_way():
    # cluster <- dataset <- fit, cluster <- prs; only the package's __init__ gathers them
    allowed = {"cluster": set(), "dataset": {"cluster"}, "fit": {"cluster", "dataset"}, "prs": {"cluster"}}
    for module, below in allowed.items():
        found = {n.split(".")[2] for n in _rlsepi_imports(f"distributed/{module}")
                 if n.startswith("rlsepi.distributed.")} & set(allowed)
        assert found <= below, (module, found - below)


# --- the dataset writer ------------------------------------------------------------------------


@pytest.mark.parametrize("partition_blocks", [1, 3])
def test_dataset_rows_equal_single_file(tmp_path: Path, single: Path, partition_blocks: int):
    out = tmp_path / "ds"
    meta = distributed.write_dataset(out, N, seed=SEED, partition_blocks=partition_blocks)
    files = distributed.dataset_files(out)
    assert len(files) == -(-4 // partition_blocks)
    a, b = pq.read_table(single), pq.read_table(out)
    assert b.num_rows == N
    assert a.schema.equals(b.schema, check_metadata=False)
    assert column_digests(a) == column_digests(b)
    assert a.equals(b)
    # provenance in every file, each file's place in the cohort, and the _metadata summary
    whole = pq.read_schema(single).metadata
    for k, f in enumerate(files):
        md = pq.read_schema(f).metadata
        assert {key: v for key, v in md.items() if key != b"rlsepi.partition"} == whole
        part = json.loads(md[b"rlsepi.partition"])
        assert part["index"] == k and part["first_person_id"] == k * partition_blocks * BS + 1
        assert pq.ParquetFile(f).metadata.num_rows == part["rows"]
    summary = pq.read_metadata(out / "_metadata")
    assert summary.num_rows == N and summary.num_row_groups == 4
    assert meta["seed"] == SEED and meta["n"] == N
    # same row groups, same encodings: every column chunk of every row group has the same bytes
    assert chunk_bytes(single) == [c for f in files for c in chunk_bytes(f)]


def test_prevalence_of_a_dataset_folder_equals_the_file(tmp_path: Path, single: Path, capsys):
    # out of core (cell counts per partition), the smooth peak age and its Fieller interval,
    # and the peak band with its bootstrap, are those of the file read in memory
    from rlsepi import cli

    out = tmp_path / "ds"
    distributed.write_dataset(out, N, seed=SEED, partition_blocks=1)
    docs = []
    for source in (single, out):
        assert cli.main(["prevalence", str(source), "--format", "json", "--quiet", "--n-boot", "20"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    mem, dist = docs
    assert dist["peak_age"] is not None and "Fieller" in dist["peak_age"]["method"]
    for key in ("crude", "peak_band", "peak_age"):
        assert dist[key] == mem[key], key


def chunk_bytes(path: Path) -> list[bytes]:
    """The encoded bytes of each column chunk (dictionary and data pages), row group by row group."""
    md, raw = pq.ParquetFile(path).metadata, path.read_bytes()
    out = []
    for i in range(md.num_row_groups):
        for j in range(md.num_columns):
            c = md.row_group(i).column(j)
            start = c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset
            out.append(raw[start:start + c.total_compressed_size])
    return out


def test_dataset_never_leaves_partial_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "ds"
    real = distributed.dataset._write_partition

    def failing(job):
        if job.index == 1:
            raise OSError("disk full (simulated)")
        return real(job)

    monkeypatch.setattr(distributed.dataset, "_write_partition", failing)
    with pytest.raises(OSError, match="disk full"):
        distributed.write_dataset(out, N, seed=SEED, partition_blocks=1)
    assert list(tmp_path.iterdir()) == []  # neither the final name nor the hidden working folder
    monkeypatch.setattr(distributed.dataset, "_write_partition", real)
    distributed.write_dataset(out, 1000, seed=SEED)
    with pytest.raises(OutputExistsError, match="--force"):
        distributed.write_dataset(out, 1000, seed=SEED)
    distributed.write_dataset(out, 2000, seed=SEED, force=True)
    assert pq.read_metadata(out / "_metadata").num_rows == 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_dataset_on_a_local_cluster(tmp_path: Path, single: Path, client):
    out = tmp_path / "ds"
    distributed.write_dataset(out, N, seed=SEED, partition_blocks=1, client=client)
    assert column_digests(pq.read_table(single)) == column_digests(pq.read_table(out))


# --- counts: freq= gives what the expanded rows give ------------------------------------------


def _hand_table() -> pd.DataFrame:
    """A small table of counts written by hand: age, sex, rls, people."""
    rows = [(25, "female", True, 3), (25, "female", False, 40), (25, "male", True, 1), (25, "male", False, 52),
            (47, "female", True, 9), (47, "female", False, 61), (47, "male", True, 4), (47, "male", False, 70),
            (68, "female", True, 14), (68, "female", False, 50), (68, "male", True, 8), (68, "male", False, 66),
            (68, "male", False, 0)]
    t = pd.DataFrame(rows, columns=["age", "sex", "rls", "people"])
    t["sex"] = t["sex"].astype(pd.CategoricalDtype(["female", "male"]))
    return t


def test_counts_give_the_expanded_rows_results():
    cells = _hand_table()
    rows = cells.loc[cells.index.repeat(cells["people"])].drop(columns="people").reset_index(drop=True)
    assert len(rows) == 378
    f = "people"
    assert prevalence.crude(cells, freq=f) == prevalence.crude(rows)
    for method in ("wilson", "exact", "jeffreys"):
        pd.testing.assert_frame_equal(prevalence.stratified(cells, ["sex", "age_band"], method=method, freq=f).table,
                                      prevalence.stratified(rows, ["sex", "age_band"], method=method).table)
    for method in ("woolf", "exact"):
        assert prevalence.odds_ratio(cells, method=method, freq=f) == prevalence.odds_ratio(rows, method=method)
    a, b = prevalence.mantel_haenszel(cells, width=20, freq=f), prevalence.mantel_haenszel(rows, width=20)
    assert (a.estimate, a.ci_lower, a.ci_upper, a.breslow_day) == (b.estimate, b.ci_lower, b.ci_upper, b.breslow_day)
    std = {20: 1.0, 40: 2.0, 60: 1.5}
    for by_sex in (False, True):
        a, b = prevalence.standardised(cells, standard=std, by_sex=by_sex, freq=f), \
            prevalence.standardised(rows, standard=std, by_sex=by_sex)
        assert (a.adjusted, a.ci_lower, a.ci_upper, a.n, a.cases, a.crude) == \
            (b.adjusted, b.ci_lower, b.ci_upper, b.n, b.cases, b.crude)
    # hand calculation: 39 cases of 378; female:male OR = (26 * 188) / (151 * 13)
    assert prevalence.crude(cells, freq=f).cases == 39
    assert prevalence.odds_ratio(cells, freq=f).estimate == pytest.approx(26 * 188 / (151 * 13), rel=1e-12, abs=0)
    with pytest.raises(ValueError, match="whole numbers"):
        prevalence.crude(cells.assign(people=cells["people"] - 10), freq=f)
    with pytest.raises(ValueError, match="survey weights"):
        prevalence.crude(cells.assign(w=1.0), freq=f, weights="w")


def test_cell_counts_and_target_check_equal_in_memory(single: Path, tmp_path: Path, client):
    df = read_cohort(single)
    expect = check_targets(df)
    require = tuple(c for c in NEEDED if c != "trimester")
    for source, cl in ((single, None), (single, client)):
        counts = distributed.cell_counts(source, NEEDED, client=cl, require=require)
        assert counts.n == N and counts.report.n_used == N
        got = check_targets(counts.cells, freq=distributed.FREQ)
        pd.testing.assert_frame_equal(got.to_frame(), expect.to_frame())
    grouped = df.groupby(["sex", "rls"], observed=True).size()
    counts = distributed.cell_counts(single, ["sex", "rls"], require=("sex", "rls"))
    assert counts.cells.set_index(["sex", "rls"])[distributed.FREQ].to_dict() == grouped.to_dict()


def test_irls_out_of_core_equals_in_memory(tmp_path: Path, single: Path, client):
    from rlsepi.risk_models import fit_nested

    n = BS + 20_000  # two partitions; small, since the in-memory fit also computes AUCs and CV
    one, out = tmp_path / "c.parquet", tmp_path / "ds"
    cohort.write_cohort(one, n, seed=SEED)
    distributed.write_dataset(out, n, seed=SEED, partition_blocks=1)
    mem = fit_nested(read_cohort(one), cv_folds=2, age="spline")
    ooc = distributed.fit_nested(out, client=client, age="spline")
    assert ooc.n == mem.n and ooc.events == mem.events
    for a, b in zip(ooc.models, mem.models):
        assert list(a.terms) == b.coefficients["term"].tolist()
        np.testing.assert_allclose(a.params, b.coefficients["estimate"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.bse, b.coefficients["se"], rtol=1e-9)
        assert a.llf == pytest.approx(b.metrics["loglik"], rel=1e-12, abs=0)
    for a, b in zip(ooc.comparisons, mem.comparisons):
        assert a["lr_statistic"] == pytest.approx(b.lr_statistic, rel=1e-8, abs=1e-8)
    assert "DeLong" in ooc.to_dict()["not_computed"]


def _two_partitions(tmp_path: Path, df: pd.DataFrame, at: int) -> Path:
    folder = tmp_path / "ds"
    folder.mkdir()
    df.iloc[:at].to_parquet(folder / "part-0.parquet")
    df.iloc[at:].to_parquet(folder / "part-1.parquet")
    return folder


def test_small_fit_warns_once_and_only_what_the_data_say(tmp_path: Path):
    # 3,000 people (seed 1): in M3, trimester 1 (13 women) and trimester 3 (10) have no cases.
    # In memory this is one separation warning; out of core it is the same warning, once, and
    # the other coefficients equal the in-memory ones
    import warnings

    from rlsepi.risk_models import SeparationWarning, fit_nested

    df = cohort.simulate(3000, rng=1)
    folder = _two_partitions(tmp_path, df, 1500)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ooc = distributed.fit_nested(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = fit_nested(df, cv_folds=2)
    assert len(caught) == 1 and caught[0].category is SeparationWarning
    text = str(caught[0].message)
    assert "'trimester1' = 1 has 13 rows and no events; 'trimester3' = 1 has 10 rows and no events" in text
    assert text in mem.warnings and ooc.warnings == (text,)
    for a, b in zip(ooc.models, mem.models):
        ok = [not t.startswith(("trimester1", "trimester3")) for t in a.terms]  # these two run off to -inf
        np.testing.assert_allclose(a.params[ok], b.coefficients["estimate"].to_numpy()[ok], rtol=0, atol=1e-9)
        assert a.converged
    assert ooc.models[3].params[a.terms.index("trimester1")] < -15
    p = _cli("fit", str(folder), check=False)
    assert p.returncode == 0 and "ill-conditioned" not in p.stderr
    assert p.stderr.count("rlsepi: warning:") == 1 and "separation" in p.stderr


def test_fit_drops_a_term_that_does_not_vary_as_in_memory(tmp_path: Path):
    import warnings

    from rlsepi.errors import InestimableTermWarning
    from rlsepi.risk_models import fit_nested

    df = cohort.simulate(3000, rng=2)
    df["pregnant"] = False
    df["trimester"] = pd.array([pd.NA] * len(df), dtype="Int8")
    folder = _two_partitions(tmp_path, df, 1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ooc = distributed.fit_nested(folder)
        mem = fit_nested(df, cv_folds=2)
    dropped = [str(w.message) for w in caught if w.category is InestimableTermWarning]
    # trimester1-3 of M3 and 'M3 vs M2: no test', once out of core and once in memory, with the same text
    assert len(dropped) == 8
    assert dropped[:4] == dropped[4:]
    assert dropped[3].startswith("M3 vs M2: no test; every term M3 adds was dropped as inestimable")
    assert "M3 vs M2: the same model" in ooc.summary()
    assert "M3: term 'trimester1' dropped from the model: it does not vary (every row has trimester1 = 0)" \
        in dropped[0]
    m3 = ooc.models[3]
    assert "trimester1" not in m3.terms and set(m3.dropped) == {"trimester1", "trimester2", "trimester3"}
    np.testing.assert_allclose(m3.params, mem.models[3].coefficients["estimate"], rtol=0, atol=1e-9)


def test_fit_reads_each_partition_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the design matrices stay in memory between IRLS passes; without the cache (cache_bytes=0)
    # every pass reads every partition again, and the estimates are the same to the last bit
    df = cohort.simulate(4000, rng=3)
    folder = _two_partitions(tmp_path, df, 2500)
    reads: list[str] = []
    real = distributed.Partition.read

    def counting(self, columns=None):
        reads.append(self.path)
        return real(self, columns)

    monkeypatch.setattr(distributed.Partition, "read", counting)
    cached = distributed.fit_nested(folder, age="spline")
    assert len(reads) == 2
    reads.clear()
    fresh = distributed.fit_nested(folder, age="spline", cache_bytes=0)
    assert len(reads) > 10
    for a, b in zip(cached.models, fresh.models):
        np.testing.assert_array_equal(a.params, b.params)
        np.testing.assert_array_equal(a.bse, b.bse)
    assert not distributed.fit._CACHE  # emptied after the fit


def _sex_design(raw: pd.DataFrame):
    """rls ~ female, for fit_logistic (any function of a partition's rows)."""
    y = raw["rls"].to_numpy(dtype=float)
    return y, [np.column_stack([np.ones(len(y)), (raw["sex"].astype(str) == "female").to_numpy(dtype=float)])]


def test_fit_logistic_with_any_design_gives_the_closed_form(tmp_path: Path):
    # one binary covariate: the maximum-likelihood fit is known in closed form from the 2 x 2 table,
    # intercept = log odds among men, slope = log odds ratio, and their SEs by Woolf's formula
    df = cohort.simulate(3000, rng=4)
    folder = _two_partitions(tmp_path, df, 1300)
    t = pd.crosstab(df["sex"].astype(str), df["rls"])
    a, b = t.loc["female", True], t.loc["female", False]
    c, d = t.loc["male", True], t.loc["male", False]
    want = [np.log(c / d), np.log(a * d / (b * c))]
    want_se = [np.sqrt(1 / c + 1 / d), np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)]
    for cache_bytes in (distributed.FIT_CACHE_BYTES, 0):
        (fit,) = distributed.fit_logistic(folder, _sex_design, [("const", "female")], read=["rls", "sex"],
                                          cache_bytes=cache_bytes)
        np.testing.assert_allclose(fit.params, want, rtol=1e-10)
        np.testing.assert_allclose(fit.bse, want_se, rtol=1e-10)
        assert fit.n == 3000 and fit.events == a + c and fit.converged


def test_check_maps_the_columns_of_a_dataset(tmp_path: Path):
    # --column applies out of core as in memory: the same report for the folder and the file
    df = cohort.simulate(2000, rng=5).rename(columns={"sex": "gender"})
    folder = _two_partitions(tmp_path, df, 1000)
    df.to_parquet(tmp_path / "one.parquet")
    one = _cli("check", str(tmp_path / "one.parquet"), "--column", "sex=gender", "--json", check=False)
    ds = _cli("check", str(folder), "--column", "sex=gender", "--json", check=False)
    assert one.returncode in (0, 1) and ds.returncode == one.returncode, ds.stderr
    assert json.loads(ds.stdout) == json.loads(one.stdout)


# --- person_id unique across partitions ------------------------------------------------------


def _id_files(tmp_path: Path, *lists) -> tuple[list, list]:
    """Partitions holding these person_id values, and their summaries."""
    parts, sums = [], []
    for ids in lists:
        f = tmp_path / f"p{len(list(tmp_path.glob('p*.parquet')))}.parquet"
        raw = pd.DataFrame({"person_id": list(ids)})
        raw.to_parquet(f)
        parts.append(distributed.Partition(str(f)))
        sums.append(distributed.dataset._id_summary(raw, "person_id"))
    return parts, sums


def test_ids_repeated_across_partitions_are_found_whatever_the_order(tmp_path: Path):
    from rlsepi.errors import DataQualityWarning, DataValidationError

    # hand-made: A holds the even numbers 0-998, B the odd numbers 1-999, C 5000, 4 and 7:
    # 4 (A and C) and 7 (B and C) are the only IDs in two partitions
    parts, sums = _id_files(tmp_path, range(0, 1000, 2), range(1, 1000, 2), [5000, 4, 7])
    for bucket_rows in (10_000, 37):  # one value range, or 28 ranges of about 37 IDs
        with pytest.raises(DataValidationError, match=r"has 2 values that occur in more than one partition "
                                                      r"\(first 4, in 'p0.parquet' and 'p2.parquet'\)"):
            distributed.check_unique_ids(parts, sums, bucket_rows=bucket_rows)
    with pytest.warns(DataQualityWarning, match="0 rows repeat an ID of their own partition and 2 IDs occur"):
        distributed.check_unique_ids(parts, sums, bucket_rows=37, allow_duplicate_ids=True)
    distributed.check_unique_ids(parts[:2], sums[:2], bucket_rows=37)  # interleaved but disjoint: fine
    # ranges that only touch share their end, 10; ranges that do not touch are not read at all
    parts, sums = _id_files(tmp_path, range(11), range(10, 20), range(20, 30))
    with pytest.raises(DataValidationError, match="has 1 value .*first 10, in 'p3.parquet' and 'p4.parquet'"):
        distributed.check_unique_ids(parts[:2], sums[:2])
    (tmp_path / "p5.parquet").unlink()  # 11-19 and 20-29: no file is read
    distributed.check_unique_ids(parts[1:], [{**sums[1], "lo": 11}, sums[2]])
    # text IDs, and a numeric partition against a text one ('17' and 17 are one ID)
    parts, sums = _id_files(tmp_path, ["a1", "17"], [17, 18])
    with pytest.raises(DataValidationError, match="first '17'"):
        distributed.check_unique_ids(parts, sums)


@pytest.mark.parametrize("command", ["check", "prevalence", "fit"])
def test_dataset_with_a_person_in_two_partitions_is_refused(tmp_path: Path, command: str):
    df = cohort.simulate(3000, rng=1)
    twin = int(df["person_id"].iloc[17])
    df.loc[df.index[2500], "person_id"] = twin  # a person of the first partition again in the second
    folder = _two_partitions(tmp_path, df, 1500)
    p = _cli(command, str(folder), check=False)
    assert p.returncode == 2, p.stderr
    assert f"column 'person_id' has 1 value that occur" in p.stderr and f"first {twin}," in p.stderr
    assert "--allow-duplicate-ids" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    if command == "check":  # counts as prevalence does (cell_counts): the warning is tested there
        return
    p = _cli(command, str(folder), "--allow-duplicate-ids", check=False)
    assert p.returncode == 0, p.stderr
    assert "rlsepi: warning: column 'person_id' repeats IDs: 0 rows repeat an ID of their own partition and 1 IDs" \
        in p.stderr


# --- the command line ---------------------------------------------------------------------------


def _cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT)} if env is None else env
    p = subprocess.run([sys.executable, "-m", "rlsepi.cli", *args], capture_output=True, text=True, env=e,
                       timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_cli_refuses_what_it_cannot_do(tmp_path: Path, single: Path):
    p = _cli("simulate", "--n", "100", "--out", str(tmp_path / "x.parquet"), "--scheduler", "local:1", check=False)
    assert p.returncode == 2 and "--out" in p.stderr and "Traceback" not in p.stderr
    p = _cli("simulate", "--n", "100", "--out", str(tmp_path / "x.parquet"), "--scheduler", "udp://x", check=False)
    assert p.returncode == 2 and "tcp://HOST:PORT" in p.stderr
    quick = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    p = _cli("fit", str(single), "--scheduler", "tcp://127.0.0.1:9", env=quick, check=False)
    assert p.returncode == 2 and "cannot reach the Dask scheduler" in p.stderr and "Traceback" not in p.stderr
    csv = tmp_path / "c.csv"
    csv.write_text("age,sex,rls\n30,F,1\n")
    p = _cli("prevalence", str(csv), "--scheduler", "local:1", check=False)
    assert p.returncode == 2 and "convert" in p.stderr


@pytest.mark.parametrize("command", ["check", "prevalence", "fit"])
def test_dataset_is_refused_for_what_a_file_is_refused_for(tmp_path: Path, command: str):
    # A pregnant man in the second partition: the file and the dataset folder give the same
    # one-line refusal, even for `prevalence`, which counts only rls, sex and age.
    df = cohort.simulate(3000, rng=1)
    man = df.index[df["sex"] == "male"][-1]
    df.loc[man, ["pregnant", "trimester"]] = [True, 2]
    folder = tmp_path / "ds"
    folder.mkdir()
    df.iloc[:1500].to_parquet(folder / "part-0.parquet")
    df.iloc[1500:].to_parquet(folder / "part-1.parquet")
    df.to_parquet(tmp_path / "one.parquet")
    for path in (tmp_path / "one.parquet", folder):
        p = _cli(command, str(path), check=False)
        assert p.returncode == 2, (path, p.stderr)
        assert "column 'pregnant' is yes for 1 row" in p.stderr and "of men" in p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


# --- a real scheduler and two worker processes on loopback --------------------------------------


@pytest.fixture
def cluster(tmp_path: Path):
    """`dask scheduler` + two `dask worker` processes (no nanny: a killed worker stays dead)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    dask = str(Path(sys.executable).with_name("dask"))
    sfile = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sfile)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not sfile.exists() or not sfile.read_text().strip():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        address = json.loads(sfile.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, procs[1:], env
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=20)


def test_real_scheduler_simulate_and_prevalence(cluster, tmp_path: Path, single: Path):
    address, _, env = cluster
    out = tmp_path / "ds"
    _cli("simulate", "--n", str(N), "--seed", str(SEED), "--out", f"{out}/", "--partition-blocks", "1",
         "--scheduler", address, "--quiet", env=env)
    assert column_digests(pq.read_table(single)) == column_digests(pq.read_table(out))
    common = ["--format", "json", "--quiet", "--n-boot", "20", "--by", "sex,age_band"]
    mem = json.loads(_cli("prevalence", str(single), *common, env=env).stdout)
    dist = json.loads(_cli("prevalence", str(out), "--scheduler", address, *common, env=env).stdout)
    for key in ("crude", "tables", "standardised", "peak_band", "peak_age"):
        assert dist[key] == mem[key], key
    assert dist["odds_ratios"] == mem["odds_ratios"][:3]  # crude Woolf, exact, Mantel-Haenszel
    assert dist["input"]["rows"] == mem["input"]["rows"]
    # IRLS with results that crossed the network (read-only arrays) equals the in-process fit
    from distributed import Client

    with Client(address, timeout=30) as c:
        remote = distributed.fit_nested(out, client=c)
    local = distributed.fit_nested(out)
    for a, b in zip(remote.models, local.models):
        np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-9)
    # prs: worker processes open the same PLINK file (a shared file system) and return partial sums
    prs = ["prs", str(PLINK2 / "geno.bed"), "--score", str(PLINK2 / "rlsepi_score.txt.gz"), "--min-overlap", "0.5",
           "--quiet"]
    _cli(*prs, "--out", str(tmp_path / "one.tsv"), env=env)
    _cli(*prs, "--out", str(tmp_path / "dist.tsv"), "--scheduler", address, env=env)
    one = pd.read_csv(tmp_path / "one.tsv", sep="\t", comment="#")
    dist = pd.read_csv(tmp_path / "dist.tsv", sep="\t", comment="#")
    assert dist.columns.tolist() == one.columns.tolist() and len(dist) == 80
    np.testing.assert_allclose(dist.drop(columns="IID").to_numpy(float), one.drop(columns="IID").to_numpy(float),
                               rtol=0, atol=1e-9)
    assert (tmp_path / "dist.matchlog.tsv").read_text() == (tmp_path / "one.matchlog.tsv").read_text()


def test_killing_a_worker_mid_run_gives_the_same_dataset(cluster, tmp_path: Path):
    from distributed import Client

    address, workers, _ = cluster
    n = 24 * BS
    out, expect = tmp_path / "ds", tmp_path / "expect"
    distributed.write_dataset(expect, n, seed=SEED, partition_blocks=1)
    killed: dict[str, bool] = {}

    def killer() -> None:  # kill a worker as soon as the first partition is on disk
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            hidden = [d for d in tmp_path.glob(".ds.*.tmp") if any(d.glob("part-*.parquet"))]
            if hidden:
                os.killpg(workers[0].pid, signal.SIGKILL)
                killed["while_writing"] = not out.exists()
                return
            time.sleep(0.005)

    with Client(address, timeout=30) as client:
        t = threading.Thread(target=killer)
        t.start()
        distributed.write_dataset(out, n, seed=SEED, partition_blocks=1, client=client)
        t.join()
    assert killed.get("while_writing") is True
    assert workers[0].wait(timeout=20) != 0
    assert pq.read_metadata(out / "_metadata").num_rows == n
    assert column_digests(pq.read_table(out)) == column_digests(pq.read_table(expect))
    assert not list(out.glob(".*"))  # no leftover temporary partition


def test_killing_a_worker_mid_run_gives_the_same_scores(cluster, tmp_path: Path):
    # prs on a real scheduler: one worker is killed (SIGKILL, no nanny to restart it) after it has
    # scored a block and while blocks remain; Dask reruns what it held on the other worker and
    # the scores are complete and the same as in one process
    from distributed import Client

    from rlsepi import polygenic as pg

    address, workers, _ = cluster
    geno, score, opts, _ = _prs_cases()["bed-mean"]
    single = pg.score_genotypes(pg.read_genotypes(geno), score, **opts)
    n_blocks = -(-int((single.match_log["status"] == "used").sum()) // 2)  # block_variants=2
    assert n_blocks >= 8
    marks = tmp_path / "marks"
    marks.mkdir()

    def slow_down() -> None:  # runs in each worker: every block takes 0.1 s longer, so the run lasts
        import os as os_
        import time as time_
        import uuid as uuid_

        import rlsepi.distributed.prs as d

        real = d._score_block

        def slow(job):
            time_.sleep(0.1)
            out = real(job)
            (marks / f"{os_.getpid()}-{uuid_.uuid4().hex}").touch()  # a block scored by this process
            return out

        d._score_block = slow

    killed: dict[str, int] = {}

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [m.name for m in marks.iterdir()]
            if any(m.startswith(f"{workers[0].pid}-") for m in done):
                os.killpg(workers[0].pid, signal.SIGKILL)
                killed["blocks_done"] = len(done)
                return
            time.sleep(0.005)

    with Client(address, timeout=30) as client:
        client.run(slow_down)
        t = threading.Thread(target=killer)
        t.start()
        dist = distributed.score_genotypes(geno, score, client=client, block_variants=2, **opts)
        t.join()
    assert 0 < killed["blocks_done"] < n_blocks  # killed mid-run
    assert workers[0].wait(timeout=20) != 0
    _assert_same_scores(dist, single)


# --- prs: variants in blocks across workers -------------------------------------------------------

def _plain(name: str):
    from rlsepi import polygenic as pg

    return pg.read_scoring_file(REAL / name, weights=["W"])


def _prs_cases():
    """(genotypes, scoring file, options, plink2 .sscore, prefix of the score columns): the committed
    plink2 known answers (tests/reference/plink2/make_reference.sh and real/make_reference.sh)."""
    from rlsepi import polygenic as pg

    bed = pg.read_scoring_file(PLINK2 / "rlsepi_score.txt.gz")
    return {
        "bed-mean": (PLINK2 / "geno", bed, {"min_overlap": 0.5}, PLINK2 / "plink2_mean.sscore"),
        "bed-nomi": (PLINK2 / "geno", bed, {"min_overlap": 0.5, "imputation": "none"}, PLINK2 / "plink2_nomi.sscore"),
        "pgen-multiallelic": (REAL / "multi.pgen", _plain("multi_alt.tsv"), {"palindromic": "keep", "min_overlap": 0},
                              REAL / "multi_alt.sscore"),
        "vcf-nocall": (REAL / "multi.vcf", _plain("multi_ref.tsv"), {"palindromic": "keep", "min_overlap": 0},
                       REAL / "multi_ref.sscore"),
        "bgen": (REAL / "multi2.bgen", _plain("multi_alt.tsv"), {"palindromic": "keep", "min_overlap": 0},
                 REAL / "multi2_bgen_alt.sscore"),
        "pgen-read-freq": (REAL / "small20.pgen", _plain("multi_ref.tsv"),
                           {"palindromic": "keep", "min_overlap": 0, "freq": pg.read_afreq(REAL / "multi.afreq")},
                           REAL / "small20_ref.sscore"),
    }


def _assert_same_scores(dist, single) -> None:
    """Identical columns, IDs, ALLELE_CT and DENOM; sums and averages to 1e-9; identical match logs."""
    a, b = dist.scores, single.scores
    assert a.columns.tolist() == b.columns.tolist()
    assert a.iloc[:, 0].tolist() == b.iloc[:, 0].tolist()
    for c in a.columns[1:]:
        if c.endswith(("ALLELE_CT", "DENOM")):
            np.testing.assert_array_equal(a[c], b[c], err_msg=c)
        else:
            np.testing.assert_allclose(a[c], b[c], rtol=0, atol=1e-9, err_msg=c)
    pd.testing.assert_frame_equal(dist.match_log, single.match_log)
    pd.testing.assert_frame_equal(dist.coverage, single.coverage)
    assert dist.references.keys() == single.references.keys()
    for w, r in dist.references.items():
        assert (r.kind, r.description) == (single.references[w].kind, single.references[w].description)
        np.testing.assert_allclose([r.mean, r.sd], [single.references[w].mean, single.references[w].sd],
                                   rtol=0, atol=1e-12)


def test_prs_with_an_empirical_reference_on_a_cluster_equals_one_process(client):
    # --reference FILE: the reference file's SUMs make the empirical reference of z and the
    # percentile, on a cluster exactly as in one process (one shared implementation)
    from rlsepi import polygenic as pg

    score = pg.read_scoring_file(PLINK2 / "rlsepi_score.txt.gz")
    single = pg.score_file(PLINK2 / "geno", score, reference_file=PLINK2 / "geno", min_overlap=0.5)
    dist = distributed.score_file(PLINK2 / "geno", score, client=client, reference_file=PLINK2 / "geno",
                                  min_overlap=0.5, block_variants=2)
    _assert_same_scores(dist, single)
    assert all(r.kind == "empirical" for r in dist.references.values())


@pytest.mark.parametrize("case", ["bed-mean", "bed-nomi", "pgen-multiallelic", "vcf-nocall", "bgen", "pgen-read-freq"])
def test_prs_on_a_cluster_equals_one_process_and_plink2(case: str, client):
    from rlsepi import polygenic as pg

    geno, score, opts, sscore = _prs_cases()[case]
    single = pg.score_genotypes(pg.read_genotypes(geno), score, **opts)
    # blocks of 2 variants: several blocks per worker, so the partial sums really are added
    dist = distributed.score_genotypes(geno, score, client=client, block_variants=2, **opts)
    _assert_same_scores(dist, single)
    # and the independent known answer: plink2 --score on the same files (6 significant digits)
    ref = pd.read_csv(sscore, sep="\t")
    names = [c[:-4] for c in ref.columns if c.endswith("_SUM") and c != "NAMED_ALLELE_DOSAGE_SUM"]
    ours = [n if len(names) > 1 else "" for n in names]
    for theirs, mine in zip(names, ours):
        pre = f"{mine}_" if mine else ""
        np.testing.assert_allclose(dist.scores[f"{pre}SUM"], ref[f"{theirs}_SUM"], rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(dist.scores[f"{pre}AVG"], ref[f"{theirs}_AVG"], rtol=2e-5, atol=1e-5)
    np.testing.assert_array_equal(dist.scores["ALLELE_CT"], ref["ALLELE_CT"])
    np.testing.assert_array_equal(dist.scores["DENOM"], ref["DENOM"])


def test_prs_combined_file_on_a_cluster(client):
    from rlsepi import polygenic as pg

    score = pg.read_scoring_file(REAL / "combined.txt.gz")
    single = pg.score_genotypes(pg.read_genotypes(REAL / "combined37.vcf"), score, palindromic="keep")
    dist = distributed.score_genotypes(REAL / "combined37.vcf", score, client=client, palindromic="keep",
                                       block_variants=3)
    _assert_same_scores(dist, single)
    for acc in ("PGS000001", "PGS000002"):  # plink2 scored each accession on its own
        ref = pd.read_csv(REAL / f"combined_{acc}.sscore", sep="\t")
        np.testing.assert_allclose(dist.scores[f"{acc}_SUM"], ref["SCORE1_SUM"], rtol=2e-5, atol=1e-5)
        np.testing.assert_array_equal(dist.scores[f"{acc}_DENOM"], ref["DENOM"])


def test_prs_palindromes_by_frequency_and_duplicates_on_a_cluster(tmp_path: Path, client):
    from rlsepi import polygenic as pg
    from rlsepi.genotypes import write_bed

    # 50 founders (the fewest whose frequencies are used). rs1 is A/T with A frequency 0.2 in the sample
    # (counts 0,0,1,1,0 of A, ten times); the score says effect A at 0.8, so its A is the sample's T:
    # dosage = 2 - count(A). rs2 is C/G with C frequency 0.2 and a score frequency of 0.5: strand cannot
    # be told, excluded. rs3 is an ordinary G/A variant, scored twice in the file: the second row is a
    # duplicate and left out. Hand calculation: SUM = 1 * (2 - a) + 0.5 * c for counts a (rs1), c (rs3).
    a = np.tile([0, 0, 1, 1, 0], 10).astype(float)
    c = np.tile([2, 1, 0, 1, 1], 10).astype(float)
    g = np.column_stack([a, a, c])
    variants = pd.DataFrame({"chrom": "1", "id": ["rs1", "rs2", "rs3"], "pos": [100, 200, 300],
                             "a1": ["A", "C", "G"], "a2": ["T", "G", "A"]})
    write_bed(tmp_path / "t", g, variants, pd.DataFrame({"IID": [f"p{i}" for i in range(50)]}))
    (tmp_path / "s.tsv").write_text(
        "rsID\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
        "rs1\tA\tT\t1\t0.8\nrs2\tC\tG\t2\t0.5\nrs3\tG\tA\t0.5\t0.3\nrs3\tG\tA\t0.5\t0.3\n")
    score = pg.read_scoring_file(tmp_path / "s.tsv")
    dist = distributed.score_genotypes(tmp_path / "t.bed", score, client=client, palindromic="frequency",
                                       min_overlap=0, block_variants=1)
    np.testing.assert_allclose(dist.scores["SUM"], (2 - a) + 0.5 * c, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(dist.scores["DENOM"], np.full(50, 4))
    assert dist.match_log["status"].tolist() == ["used", "excluded", "used", "excluded"]
    single = pg.score_genotypes(pg.read_genotypes(tmp_path / "t.bed"), score, palindromic="frequency", min_overlap=0)
    _assert_same_scores(dist, single)


def test_prs_on_a_cluster_refuses_what_one_process_refuses(client):
    from rlsepi import polygenic as pg
    from rlsepi.errors import DataValidationError

    # 20 founders: the sample's frequencies cannot impute (raised on a worker, the same error here)
    with pytest.raises(DataValidationError, match="only 20 founders"):
        distributed.score_genotypes(REAL / "small20.pgen", _plain("multi_ref.tsv"), client=client,
                                    palindromic="keep", min_overlap=0)
    with pytest.raises(DataValidationError, match="below --min-overlap"):
        distributed.score_genotypes(PLINK2 / "geno", pg.read_scoring_file(PLINK2 / "rlsepi_score.txt.gz"),
                                    client=client, min_overlap=0.99)
