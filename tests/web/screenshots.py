"""Screenshots of the chat page for the README: docs/screenshots/chat-desktop.png (1280x860, a
Korean conversation) and chat-phone.png (360x740, an English one), taken in Debian's Chromium
against a real stack (inference, gateway, the project's edge) on free ports.

    .venv/bin/python -m tests.web.screenshots [--models-dir models] [--out docs/screenshots]
    (make web-screenshots)

Uses the newest model in --models-dir, training the default one there first when it has none
(as `make serve` does). Korean text needs a Hangul font on this machine (fonts-nanum or
fonts-noto-cjk); the page itself loads no font.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from recommender import model_repository
from tests.support import PYTHON, ROOT
from tests.web import support

CONVERSATIONS = {
    "chat-desktop.png": ({"width": 1280, "height": 860}, "ko-KR",
                         ["안녕하세요", "중학생 아들 게임기 사주려고요, 40만원 정도"]),
    "chat-phone.png": ({"width": 360, "height": 740}, "en-US",
                       ["hi, I am looking for a gift for my mom", "she loves cooking and baking, around 200,000 won"]),
}


def take(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        try:
            for name, (viewport, locale, messages) in CONVERSATIONS.items():
                context = browser.new_context(viewport=viewport, locale=locale, device_scale_factor=1)
                page = context.new_page()
                page.goto(url)
                page.wait_for_selector("body[data-ready]")
                for number, text in enumerate(messages, start=1):
                    page.fill("#message", text)
                    page.press("#message", "Enter")
                    expect(page.locator(".message.user")).to_have_count(number, timeout=30_000)
                expect(page.locator("#typing")).to_be_hidden()
                # Show the newest answer from its first line (its cards), not only its end.
                page.locator(".message.user").last.evaluate("e => e.scrollIntoView({block: 'start'})")
                page.locator("#message").blur()
                path = out / name
                page.screenshot(path=str(path))
                written.append(path)
                context.close()
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "purchases.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    if not support.chromium_available():
        print(f"no Chromium at {support.CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 1
    if model_repository.latest_version(args.models_dir) is None:
        subprocess.run([PYTHON, "-m", "trainer", "train", "--data", str(args.data), "--models-dir",
                        str(args.models_dir), "--generate-if-missing"], cwd=ROOT, check=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="web-screenshots-") as work:
        logs = Path(work)
        inference, inference_target = support.start_inference(args.models_dir, logs)
        try:
            gateway, gateway_target = support.start_gateway(inference_target, logs)
            try:
                edge, url = support.start_edge(gateway_target, logs)
                try:
                    for path in take(url, args.out):
                        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
                finally:
                    edge.stop()
            finally:
                gateway.stop()
        finally:
            inference.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
