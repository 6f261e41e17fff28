"""Terminal chat with the recommender gateway.

    python -m clients.chat --target 127.0.0.1:50051      (make chat)
    RECOMMENDER_TOKEN=$(cat .secrets/dev.token) RECOMMENDER_CA=.secrets/ca.pem \
        python -m clients.chat --target 127.0.0.1:8443   (through Envoy, make cluster)

Type in Korean or English; line editing and history come from readline. The conversation
state returned by each turn is sent back with the next one. Commands: /reset starts over,
/quit (or Ctrl-D) leaves. With stdin not a terminal (a script piping lines in) it reads
line by line, prints the replies and exits 0 at end of input.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from typing import TextIO

import grpc

from clients.client import Item, RecommenderClient, RecommenderError

try:  # line editing, history and wide-character input at the prompt
    import readline  # noqa: F401
except ImportError:  # pragma: no cover - platforms without GNU readline
    readline = None

QUIT = ("/quit", "/exit", "/q")
RESET = ("/reset",)
HELP = ("/help", "/?")

_HEADINGS = {"ko": ("순위", "상품", "점수", "이유"), "en": ("rank", "product", "score", "why")}
# A recommendation line of the gateway's reply: "1. 스마트워치 (43%) - 운동용으로 딱 맞아요".
_REC_LINE = re.compile(r"^\s*(\d+)\. .+ \(\d+%\) - (.+)$")


def display_width(text: str) -> int:
    """Terminal columns of `text`: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(width - display_width(text), 0)
    return gap + text if right else text + gap


def split_reply(reply: str) -> tuple[list[str], dict[int, str], list[str]]:
    """(lines before the recommendations, rank -> reason, lines after). The table shows the
    recommendations, so the REPL prints them once, with the reply's reasons in a column."""
    lines = reply.splitlines()
    numbered = [n for n, line in enumerate(lines) if _REC_LINE.match(line)]
    if not numbered:
        return lines, {}, []
    first, last = numbered[0], numbered[-1]
    # The line right before the first recommendation is its heading ("추천 상품:").
    head_end = first - 1 if first and lines[first - 1].rstrip().endswith(":") else first
    reasons = {int(m.group(1)): m.group(2) for m in map(_REC_LINE.match, lines[first:last + 1]) if m}
    return lines[:head_end], reasons, lines[last + 1:]


def format_table(items: Sequence[Item], language: str, reasons: dict[int, str] | None = None) -> str:
    """An aligned table of rank, product name (in the conversation's language), score % and,
    when given, the reason for each product."""
    if not items:
        return ""
    reasons = reasons or {}
    headings = _HEADINGS.get(language, _HEADINGS["en"])
    columns = 4 if reasons else 3
    headings = headings[:columns]
    rows = [(str(i.rank), i.display_name(language), f"{i.score * 100:.1f}%", reasons.get(i.rank, ""))[:columns]
            for i in items]
    widths = [max(display_width(r[c]) for r in [headings, *rows]) for c in range(columns)]
    right = (True, False, True, False)
    lines = []
    for n, row in enumerate([headings, *rows]):
        cells = [_pad(row[c], widths[c], right=right[c]) for c in range(columns)]
        lines.append(("  " + "  ".join(cells)).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _lines(interactive: bool, stdin: TextIO) -> Iterator[str]:
    """User lines until EOF. input() gives readline editing at a terminal; a pipe is read
    directly so no prompts end up in a script's output."""
    while True:
        if interactive:
            try:
                yield input("you> ")
            except EOFError:
                print()
                return
        else:
            line = stdin.readline()
            if not line:
                return
            yield line.rstrip("\r\n")


def _utf8(stream: TextIO) -> None:
    # A C/POSIX locale would otherwise turn Korean into UnicodeErrors or mojibake.
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    if encoding != "utf8" and hasattr(stream, "reconfigure"):
        stream.reconfigure(encoding="utf-8", errors="replace")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m clients.chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="gateway host:port")
    parser.add_argument("--top-k", type=int, default=3, help="products to show, 1-10")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per turn")
    parser.add_argument("--tls", action="store_true",
                        help="connect with TLS (system root certificates unless --ca); on by itself with --ca")
    parser.add_argument("--ca", default=os.environ.get("RECOMMENDER_CA") or None,
                        help="PEM file of the CA to trust, implies TLS (env RECOMMENDER_CA)")
    parser.add_argument("--token", default=None,
                        help="caller token sent as 'authorization: Bearer <token>' (env RECOMMENDER_TOKEN; "
                             "prefer the environment or --token-file: a flag shows in `ps`)")
    parser.add_argument("--token-file", default=None, help="file holding the caller token")
    return parser


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            return f.read().strip() or None
    return args.token or os.environ.get("RECOMMENDER_TOKEN") or None


def run(client: RecommenderClient, top_k: int, interactive: bool, stdin: TextIO, out: TextIO) -> None:
    state = None
    for line in _lines(interactive, stdin):
        text = line.strip()
        if not text:
            continue
        command = text.lower()
        if command in QUIT:
            return
        if command in HELP:
            print("/reset: start over   /quit: leave   (Korean or English text: describe what you need)", file=out)
            continue
        if command in RESET:
            language = state.language if state is not None else "en"
            state = None
            print("bot> " + ("대화를 처음부터 다시 시작합니다." if language == "ko" else "Starting over.") + "\n",
                  file=out)
            continue
        try:
            turn = client.chat(text, state, top_k=top_k)
        except RecommenderError as exc:
            print(f"error: {exc.code.name}: {exc.details}", file=sys.stderr)
            if exc.code == grpc.StatusCode.UNAUTHENTICATED:  # retrying cannot help
                print("chat: set RECOMMENDER_TOKEN (or --token-file) to a token the gateway knows",
                      file=sys.stderr)
                raise SystemExit(1) from None
            continue  # keep the conversation: the customer can rephrase or retry
        state = turn.state
        before, reasons, after = split_reply(turn.reply) if turn.items else (turn.reply.splitlines(), {}, [])
        print("bot> " + "\n     ".join(before), file=out)
        table = format_table(turn.items, turn.language, reasons)
        if table:
            print(table, file=out)
        if after:
            print("     " + "\n     ".join(after), file=out)
        print(file=out)
        out.flush()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _utf8(sys.stdout)
    interactive = sys.stdin.isatty()
    if not interactive:
        _utf8(sys.stdin)
    try:
        token = _token(args)
    except OSError as exc:
        print(f"chat: --token-file {args.token_file}: {exc.strerror}", file=sys.stderr)
        return 2
    # tls None: TLS when a CA is given; an empty ca_file/token keeps the client from reading
    # the environment again.
    with RecommenderClient(args.target, timeout=args.timeout, tls=True if args.tls else None,
                           ca_file=args.ca or "", token=token or "") as client:
        try:
            client.wait_ready(min(args.timeout, 10.0))
        except RecommenderError as exc:
            print(f"chat: cannot reach the gateway at {args.target}: {exc.details}", file=sys.stderr)
            if args.ca or args.tls:
                print("chat: this connects with TLS (--tls, --ca or RECOMMENDER_CA); a plaintext server "
                      "(make serve) needs neither", file=sys.stderr)
            return 1
        if interactive:
            print(f"Connected to {args.target}. 한국어나 영어로 말씀하세요 (Korean or English). "
                  "/reset starts over, /quit leaves.\n")
        try:
            run(client, args.top_k, interactive, sys.stdin, sys.stdout)
        except KeyboardInterrupt:
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
