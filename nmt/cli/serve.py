"""`nmt-serve`: the attention explorer of a checkpoint (or model folder) in the browser, and its
JSON API for programs, on a local HTTP server."""

from __future__ import annotations

import argparse
import logging

from nmt.cli.common import positive_int, run_tool
from nmt.utils.errors import UserError


def _serve(args: argparse.Namespace) -> None:
    from nmt.decoding.translator import Translator  # heavy imports only once the arguments are fine
    from nmt.serving.api import ExplorerApi, Limits
    from nmt.serving.server import make_server

    translator = Translator.from_checkpoint(args.checkpoint, device=args.device, precision=args.precision)
    api = ExplorerApi(translator, Limits(args.max_chars, args.max_texts), name=str(args.checkpoint))
    try:
        server = make_server(api, args.host, args.port)
    except OSError as error:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({error.strerror})") from None
    host, port = server.server_address[:2]
    print(f"attention explorer of {args.checkpoint} at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Serves the attention explorer: translate a sentence and see its attention, alignment and
    per-token probabilities, or score a given pair; POST /api/translate and /api/score for programs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint or a model folder (nmt-export --format hub)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="the port (0: any free one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", help="auto, fp32, bf16 or fp16 (default: the run's decode_precision)")
    parser.add_argument("--max-chars", type=positive_int, default=1000, help="characters of one text at most")
    parser.add_argument("--max-texts", type=positive_int, default=64, help="texts of one request at most")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s")
    run_tool(_serve, parser, argv)


if __name__ == "__main__":
    main()
