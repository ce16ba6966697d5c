"""``rlsepi risk``: an illustrative absolute risk of RLS for one person."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rlsepi.commands import add_params_option, require_file
from rlsepi.errors import RLSEpiError
from rlsepi.io import to_jsonable
from rlsepi.parameters import load_parameters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "risk", help="illustrative absolute risk of RLS for one person",
        description="Compute the probability of RLS for one person under a logistic model, next to the "
        "average for people of the same age and sex, with the polygenic score and its percentile. Any input "
        "may be left out: it is then averaged over the population's distribution given what is known. The "
        "default model is the calibrated generating model of the synthetic cohort; --model takes a model "
        "saved by 'rlsepi fit --format json'. Illustrative only: not a diagnosis.",
    )
    p.add_argument("--age", type=float, metavar="YEARS", help="age in completed years (adult)")
    p.add_argument("--sex", choices=("female", "male"), help="sex")
    preg = p.add_mutually_exclusive_group()
    preg.add_argument("--pregnant", dest="pregnant", action="store_const", const=True, default=None,
                      help="currently pregnant")
    preg.add_argument("--not-pregnant", dest="pregnant", action="store_const", const=False,
                      help="known not to be pregnant")
    p.add_argument("--trimester", type=int, choices=(1, 2, 3), help="trimester of pregnancy (implies --pregnant)")
    p.add_argument("--ferritin", type=float, metavar="UG_L", help="serum ferritin in µg/L")
    p.add_argument("--genotype", action="append", default=[], metavar="RSID=ALLELES",
                   help="a genotype as two alleles, e.g. rs2300478=GT (repeat for each variant)")
    p.add_argument("--genotype-file", type=Path, metavar="FILE",
                   help="a consumer genetic test's raw-data text file (23andMe or AncestryDNA layout); the "
                   "score's variants are read from it (a --genotype for the same variant overrides it)")
    p.add_argument("--model", type=Path, metavar="FILE", help="a model fitted with 'rlsepi fit --format json'")
    p.add_argument("--model-name", metavar="NAME",
                   help="which model in FILE (default: the largest of M0-M3 it holds)")
    add_params_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def _genotypes(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        rsid, sep, alleles = item.partition("=")
        if not sep or not rsid.strip() or not alleles.strip():
            raise RLSEpiError(f"--genotype '{item}' is not RSID=ALLELES; write e.g. rs2300478=GT")
        if rsid.strip() in out:
            raise RLSEpiError(f"--genotype gives {rsid.strip()} twice")
        out[rsid.strip()] = alleles.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from rlsepi.risk import individual_risk

    params = load_parameters(args.params)
    model = None
    if args.model is not None:
        from rlsepi.errors import DataValidationError
        from rlsepi.risk_models import check_within_range, load_risk_model

        path = require_file(args.model, "model file")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            first = " ".join(str(exc).split())
            raise DataValidationError(f"cannot read model file '{path}' as JSON: {first}; give a file written by "
                                      "'rlsepi fit --format json'") from None
        if not isinstance(doc, dict):
            raise DataValidationError(f"model file '{path}' is not a model written by 'rlsepi fit --format json'")
        model = load_risk_model(doc, name=args.model_name)
        data = doc.get("data_range")
        if not isinstance(data, dict):
            raise DataValidationError(f"model file '{path}' does not record the range of the data it was fitted on; "
                                      "write it again with this version of 'rlsepi fit --format json'")
        check_within_range(data, age=args.age, sex=args.sex, pregnant=True if args.trimester is not None else args.pregnant,
                           trimester=args.trimester, ferritin=args.ferritin,
                           uses=getattr(model, "uses", frozenset()))
    elif args.model_name is not None:
        raise RLSEpiError("--model-name needs --model FILE")
    genotypes = _genotypes(args.genotype)
    from_file = None
    if args.genotype_file is not None:
        from rlsepi.consumer import read_consumer_genotypes

        variants = list(model.score_weights) if model is not None and model.score_weights else \
            [locus.rsid for locus in params.loci]
        from_file = read_consumer_genotypes(require_file(args.genotype_file, "genotype file"), rsids=variants)
        genotypes = {**from_file.genotypes, **genotypes}
    result = individual_risk(
        age=args.age, sex=args.sex, pregnant=args.pregnant, trimester=args.trimester, ferritin=args.ferritin,
        genotypes=genotypes, model=model, params=params,
    )
    if args.json:
        print(json.dumps(to_jsonable(result.to_dict()), indent=2, ensure_ascii=False))
    else:
        if from_file is not None:
            print(from_file.summary() + "\n")
        print(result.summary())
    return 0
