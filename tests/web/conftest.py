"""Browser tests of the chat page: the real stack (inference, gateway, the project's edge
serving web/ and transcoding /v1/chat) and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import pytest

from tests.web import support


@pytest.fixture(scope="session")
def web_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("web-logs")


@pytest.fixture(scope="session")
def web_inference(inference_target):
    """The session's shared inference server (tests/conftest.py)."""
    return inference_target


@pytest.fixture(scope="session")
def page_url(gateway_target, web_logs):
    """The page as a customer opens it: http://127.0.0.1:<edge port>/, the project's edge in
    front of the session's shared gateway (tests/conftest.py)."""
    edge, url = support.start_edge(gateway_target, web_logs)
    try:
        yield url
    finally:
        edge.stop()


@pytest.fixture(scope="session")
def browser():
    if not support.chromium_available():
        pytest.fail(f"no Chromium at {support.CHROMIUM}: `apt-get install chromium` (make test does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageErrors(list):
    """Uncaught script errors, console errors and requests to other origins of one page; a
    test ends with none."""


@pytest.fixture
def open_page(browser):
    """open_page(url, width=1280, height=860, locale="en-US") -> a fresh page (own context, so its
    own sessionStorage). Fails the test if the page logged a script error."""
    contexts = []
    errors = PageErrors()

    def open_(url: str, width: int = 1280, height: int = 860, locale: str = "en-US"):
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        page.on("console", lambda message: errors.append(f"console.{message.type}: {message.text}")
                if message.type == "error" and "/v1/chat" not in message.text
                and "Failed to load resource" not in message.text else None)
        origin = url.split("/", 3)[:3]
        # Every asset and call stays on our origin: no CDN, no font service, no third party.
        page.on("request", lambda request: errors.append(f"third-party request: {request.url}")
                if request.url.split("/", 3)[:3] != origin else None)
        page.goto(url)
        page.wait_for_selector("body[data-ready]")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, errors
