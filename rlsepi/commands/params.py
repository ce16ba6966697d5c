"""``rlsepi params``: print the full parameter set as TOML, with the sources."""

from __future__ import annotations

import argparse
import dataclasses

from rlsepi.commands import add_params_option
from rlsepi.parameters import Parameters, load_parameters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "params", help="print the published parameters (TOML) or their sources",
        description="Print every parameter as TOML: copy the keys you want to change into a file and pass it "
        "to --params. With --sources, list each parameter's citation and status (V verified, V2 secondary, "
        "D derived, A modelling assumption).",
    )
    add_params_option(p)
    p.add_argument("--sources", action="store_true", help="list the citation and status of each parameter")
    p.set_defaults(run=run)


def _sources(params: Parameters) -> list[str]:
    lines = []
    for section in dataclasses.fields(params):
        value = getattr(params, section.name)
        if section.name == "loci":
            lines += [f"loci.{loc.rsid}: {loc.source}" for loc in value]
            continue
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if hasattr(item, "source"):
                lines.append(f"{section.name}.{f.name}: {item.source}")
            elif f.metadata.get("source"):
                lines.append(f"{section.name}.{f.name} [{f.metadata['status']}]: {f.metadata['source']}")
    return lines


def run(args: argparse.Namespace) -> int:
    params = load_parameters(args.params)
    print("\n".join(_sources(params)) if args.sources else params.to_toml(), end="\n" if args.sources else "")
    return 0
