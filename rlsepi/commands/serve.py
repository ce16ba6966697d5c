"""``rlsepi serve``: the counsellor's page and JSON API on a local web server."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from rlsepi.commands import add_params_option, require_file
from rlsepi.errors import RLSEpiError
from rlsepi.parameters import load_parameters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="the counsellor's page and JSON API on a local web server",
        description="Start a web server with a page for genetic counsellors (one person's illustrative risk of "
        "RLS, drawn as people out of 100, with a printable summary) and a JSON API (POST /api/risk takes the "
        "fields of 'rlsepi risk' and returns its --json output; the API is described at /openapi.json). "
        "It listens on this machine only unless --allow-remote is given; nothing entered is stored or logged, "
        "and the page loads nothing from the internet. Stop it with Ctrl-C.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--model", type=Path, metavar="FILE", help="a model fitted with 'rlsepi fit --format json'")
    p.add_argument("--model-name", metavar="NAME", help="which model in FILE (default: the largest of M0-M3)")
    add_params_option(p)
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other than this machine (anyone who can reach it can use the page)")
    p.set_defaults(run=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise RLSEpiError(f"--port must be 1-65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            raise RLSEpiError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None


def run(args: argparse.Namespace) -> int:
    if not _is_loopback(args.host) and not args.allow_remote:
        raise RLSEpiError(f"--host {args.host} would make the page reachable from other machines; use the default "
                          "127.0.0.1, or add --allow-remote if that is what you want")
    params = load_parameters(args.params)
    model = None
    provenance = None
    if args.model is not None:
        from rlsepi.risk_models import load_risk_model

        model = load_risk_model(require_file(args.model, "model file"), name=args.model_name)
        provenance = {"model": f"{model.name} from {args.model.name}",
                      "population for unknown inputs": "rlsepi's synthetic population"}
    elif args.model_name is not None:
        raise RLSEpiError("--model-name needs --model FILE")
    _check_port(args.host, args.port)

    import uvicorn

    from rlsepi.web import create_app

    app = create_app(model=model, params=params, provenance=provenance)
    app.state.site.risk()  # solve and cache the model now, so that the first visitor does not wait
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    print(f"rlsepi serve: the page is at {url} (API: {url}api/risk, description: {url}openapi.json); "
          "stop with Ctrl-C", flush=True)
    if not _is_loopback(args.host):
        print(f"rlsepi serve: warning: listening on {args.host}: anyone who can reach this machine on port "
              f"{args.port} can use the page and API; there is no login and the traffic is not encrypted "
              "(plain HTTP)", file=sys.stderr, flush=True)
    if args.open:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    # no access log: request lines carry no inputs, but nothing about a request is written anywhere
    uvicorn.run(app, host=args.host.strip("[]"), port=args.port, log_level="warning", access_log=False,
                server_header=False)
    print("rlsepi serve: stopped", flush=True)
    return 0
