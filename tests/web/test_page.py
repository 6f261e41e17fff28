"""The chat page in a real browser (Chromium through Playwright) against the real stack.

Each test opens its own browser context, so each starts with an empty sessionStorage."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from recommender import security
from tests.web import support

pytestmark = pytest.mark.slow  # starts servers and a browser

STORAGE_KEY = "recommender.chat.v1"


def send(page: Page, text: str) -> None:
    """Type a message and press Enter; returns once the bot's answer is on the page."""
    answered = page.locator(".message.user").count() + 1
    page.fill("#message", text)
    page.press("#message", "Enter")
    expect(page.locator(".message.user")).to_have_count(answered)
    expect(page.locator("#typing")).to_be_hidden()


def understood(page: Page) -> dict[str, str]:
    values = {}
    for button in page.locator("#slots button").all():
        values[button.get_attribute("data-slot")] = button.locator(".slot-value").inner_text()
    return values


def stored(page: Page) -> dict | None:
    return page.evaluate(f"() => JSON.parse(sessionStorage.getItem('{STORAGE_KEY}'))")


def chat_requests(page: Page) -> list[dict]:
    """The JSON bodies the page POSTs to /v1/chat, in order (filled in as they are sent)."""
    bodies: list[dict] = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/v1/chat") else None)
    return bodies


def last_question(page: Page) -> str:
    return page.locator(".message.question p").last.inner_text()


def top_card(page: Page):
    return page.locator(".message.bot .cards").last.locator(".card").first


def test_korean_three_turns(page_url, open_page):
    page = open_page(page_url)
    requests = chat_requests(page)

    send(page, "안녕하세요")
    expect(page.locator("html")).to_have_attribute("lang", "ko")  # the page follows the customer
    expect(page.locator("#understood-heading")).to_have_text("제가 이해한 내용")
    assert "어떤 용도로" in last_question(page)
    assert page.locator(".card").count() == 0  # nothing known yet: no recommendations
    expect(page.locator("#chips .chip").first).to_have_attribute("data-slot", "interest")

    send(page, "중학생 아들 게임기 사주려고요, 40만원 정도")
    card = top_card(page)
    expect(card.locator(".product")).to_have_text("게임 콘솔")
    expect(card.locator(".typical")).to_have_text("보통 50만원")
    expect(card.locator(".budget")).to_have_text("예산 40만원")
    expect(card.locator(".fit")).to_have_text("예산 초과")
    expect(card.locator(".reason")).to_contain_text("게임용으로 딱 맞아요")
    assert page.evaluate("() => document.documentElement.scrollHeight") <= 860  # only the log scrolls
    percent = int(card.locator(".score-bar").get_attribute("aria-valuenow"))
    assert 30 <= percent <= 100
    assert understood(page) == {"age": "14세", "gender": "남성", "budget": "40만원", "interest": "게임",
                                "purpose": "선물", "season": "아직 몰라요"}
    assert "언제쯤 구매하실 예정인가요" in last_question(page)
    expect(page.locator("#chips .chip").first).to_have_attribute("data-slot", "season")

    # The conversation lives in sessionStorage: a reload keeps it, and the next turn sends it.
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(top_card(page).locator(".product")).to_have_text("게임 콘솔")
    send(page, "겨울방학 선물이에요")
    assert requests[-1]["state"]["turn"] == 2
    assert requests[-1]["state"]["features"] == [14, 2, 400000, 5, 2, 0]
    expect(top_card(page).locator(".product")).to_have_text("게임 콘솔")
    assert understood(page)["season"] == "겨울"
    state = stored(page)["state"]
    assert state["turn"] == 3 and state["language"] == "ko" and state["features"][5] == 4
    # Every slot is known: no more questions, the usual answers are offered instead.
    assert page.locator(".message.question").count() == 2
    expect(page.locator("#chips .chip")).to_have_text(["30만원", "크리스마스", "제가 쓸 거예요", "선물이에요"])


def test_english_two_turns(page_url, open_page):
    page = open_page(page_url, locale="ko-KR")  # a Korean browser: the page still follows the customer
    expect(page.locator("html")).to_have_attribute("lang", "ko")

    send(page, "hi, I am looking for a gift for my mom")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#understood-heading")).to_have_text("What I understood")
    expect(page.locator("#start-over")).to_have_text("Start over")
    assert understood(page)["gender"] == "female" and understood(page)["purpose"] == "a gift"
    assert last_question(page) == "What will it be used for? For example fitness, music, gaming, work or cooking."

    send(page, "she loves cooking and baking, around 200,000 won")
    card = top_card(page)
    expect(card.locator(".product")).to_have_text("Air fryer")
    expect(card.locator(".typical")).to_have_text("usually 150,000 won")
    expect(card.locator(".budget")).to_have_text("budget 200,000 won")
    expect(card.locator(".fit")).to_have_text("within budget")
    expect(card.locator(".reason")).to_contain_text("made for cooking & home")
    assert understood(page) == {"age": "not known yet", "gender": "female", "budget": "200,000 won",
                                "interest": "cooking & home", "purpose": "a gift", "season": "not known yet"}
    assert last_question(page) == "How old is the person you are buying for?"
    expect(page.locator("#chips .chip").first).to_have_attribute("data-slot", "age")


def test_start_over_clears_the_state(page_url, open_page):
    page = open_page(page_url)
    requests = chat_requests(page)
    send(page, "중학생 아들 게임기 사주려고요, 40만원 정도")
    assert stored(page)["state"]["turn"] == 1

    page.get_by_role("button", name="처음부터").click()
    assert stored(page) is None
    assert set(understood(page).values()) == {"아직 몰라요"}
    expect(page.locator("#log > li")).to_have_count(1)  # the welcome only
    expect(page.locator("#message")).to_be_focused()

    send(page, "hello, I need earbuds")
    assert "state" not in requests[-1]
    assert stored(page)["state"]["turn"] == 1
    assert understood(page)["age"] == "not known yet"


def test_a_correction_changes_the_next_turn(page_url, open_page):
    page = open_page(page_url)
    requests = chat_requests(page)
    send(page, "중학생 아들 게임기 사주려고요, 40만원 정도")
    expect(top_card(page).locator(".fit")).to_have_text("예산 초과")

    page.locator("#slots button[data-slot=budget]").click()
    expect(page.locator("#editor")).to_be_visible()
    page.fill("#editor-number", "600000")
    page.get_by_role("button", name="적용").click()
    expect(page.locator("#editor")).to_be_hidden()
    budget = page.locator("#slots button[data-slot=budget]")
    expect(budget.locator(".slot-value")).to_have_text("60만원")
    expect(budget.locator(".badge")).to_have_text("고침")
    expect(page.locator("#correction-note")).to_be_visible()

    page.locator("#slots button[data-slot=gender]").click()
    page.get_by_label("여성").check()
    page.get_by_role("button", name="적용").click()

    send(page, "크리스마스")
    assert requests[-1]["state"]["features"] == [14, 1, 600000, 5, 2, 0]
    # The gateway answered from the corrected state: console now fits the budget.
    expect(top_card(page).locator(".budget")).to_have_text("예산 60만원")
    expect(top_card(page).locator(".fit")).to_have_text("예산 안")
    assert understood(page)["budget"] == "60만원" and understood(page)["gender"] == "여성"
    expect(page.locator("#correction-note")).to_be_hidden()

    # A bad number is explained, not sent.
    page.locator("#slots button[data-slot=age]").click()
    page.fill("#editor-number", "250")
    page.get_by_role("button", name="적용").click()
    expect(page.locator("#editor-error")).to_have_text("나이는 1세에서 100세 사이의 숫자로 적어 주세요.")
    page.keyboard.press("Escape")
    expect(page.locator("#editor")).to_be_hidden()
    assert understood(page)["age"] == "14세"


def test_a_message_over_2000_characters_shows_the_length_error(page_url, open_page):
    page = open_page(page_url)
    requests = chat_requests(page)
    page.fill("#message", "가" * 3000)
    expect(page.locator("#counter")).to_have_text(re.compile(r"3,000 / 2,000"))
    page.press("#message", "Enter")
    expect(page.locator("#error")).to_have_text(
        "Your message is too long (3,000 characters). Please keep it to 2,000 characters or fewer.")
    assert requests == []  # checked before anything is sent
    assert page.locator("#message").input_value() == "가" * 3000  # the text is kept to shorten

    page.fill("#message", "가" * 2000)  # exactly the limit is fine
    expect(page.locator("#error")).to_be_hidden()


def test_sign_in_and_down_messages(web_inference, web_logs, tmp_path, open_page):
    """A gateway that wants a caller token (the cluster) gets the sign-in sentence, since the
    page carries none; once that gateway is stopped, the down sentence."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(security.token_line("shop", "a-token-only-the-shop-server-knows") + "\n")
    gateway, target = support.start_gateway(web_inference, web_logs, name="gateway-with-tokens",
                                            extra_args=("--tokens-file", str(tokens)))
    edge = None
    try:
        edge, url = support.start_edge(target, web_logs, name="edge-gateway-with-tokens")
        page = open_page(url)
        headers: list[dict] = []
        page.on("request", lambda r: headers.append(r.headers) if r.url.endswith("/v1/chat") else None)
        page.fill("#message", "hi, I need earbuds")
        page.press("#message", "Enter")
        error = page.locator("#error")
        expect(error).to_have_text("Please sign in to the shop to use the assistant.")
        expect(error).to_have_attribute("role", "alert")
        assert headers and all("authorization" not in h for h in headers)  # the page holds no token

        gateway.stop()
        page.fill("#message", "around 100,000 won")
        page.press("#message", "Enter")
        expect(error).to_have_text("The shop assistant is not available right now. Please try again in a moment.")
        assert page.locator("#message").input_value() == "around 100,000 won"  # kept for a retry
        assert page.locator(".message.user").count() == 0
    finally:
        if edge is not None:
            edge.stop()
        gateway.stop()


def _focused(page: Page) -> str:
    """The focused element: its id, a slot button's slot, or its text (links, chips)."""
    return page.evaluate("() => { const e = document.activeElement; return e.id"
                         " || (e.closest('#slots') && e.dataset.slot) || e.textContent.trim(); }")


def test_keyboard_only(page_url, open_page):
    page = open_page(page_url)
    expect(page.locator("#message")).to_be_focused()  # ready to type on arrival

    page.keyboard.type("중학생 아들 게임기 사주려고요, 40만원 정도")
    page.keyboard.press("Enter")
    expect(top_card(page).locator(".product")).to_have_text("게임 콘솔")
    expect(page.locator("#message")).to_be_focused()
    assert page.locator("#message").input_value() == ""
    # Shift+Enter is a new line, not a send.
    page.keyboard.type("첫 줄")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("둘째 줄")
    assert page.locator("#message").input_value() == "첫 줄\n둘째 줄"
    assert page.locator(".message.user").count() == 1
    page.fill("#message", "")

    # From the top, in reading order: skip link, language, start over, the conversation (to
    # scroll it), the six slots, the quick replies, the message box, send.
    page.focus(".skip-link")
    order = [_focused(page)]
    for _ in range(3 + 6 + page.locator("#chips .chip").count() + 2):
        page.keyboard.press("Tab")
        order.append(_focused(page))
    chips = [c.inner_text() for c in page.locator("#chips .chip").all()]
    assert order == ["메시지 입력으로 건너뛰기", "language-toggle", "start-over", "conversation",
                     "age", "gender", "budget", "interest", "purpose", "season", *chips, "message", "send"]
    # Every control the keyboard reaches shows where the focus is.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")

    # A quick reply by keyboard: Shift+Tab back from the message box to the last chip.
    page.focus("#message")
    page.keyboard.press("Shift+Tab")
    last_chip = chips[-1]
    assert _focused(page) == last_chip
    page.keyboard.press("Enter")
    expect(page.locator(".message.user").last).to_contain_text(last_chip)
    expect(page.locator("#typing")).to_be_hidden()

    # A correction by keyboard: Enter opens the slot, arrows pick, Enter applies.
    page.focus("#slots button[data-slot=purpose]")
    page.keyboard.press("Enter")
    expect(page.locator("#editor")).to_be_visible()
    assert page.evaluate("() => document.activeElement.name") == "slot-value"
    page.keyboard.press("ArrowUp")  # 선물 -> 본인용
    page.keyboard.press("Enter")
    expect(page.locator("#editor")).to_be_hidden()
    assert _focused(page) == "purpose"  # focus comes back to what was corrected
    assert understood(page)["purpose"] == "본인용"

    # Labels for what has no visible text of its own.
    assert page.locator("#message").get_attribute("aria-describedby")
    expect(page.get_by_label("메시지", exact=True)).to_have_count(1)
    expect(page.get_by_role("group", name="빠른 답변")).to_have_count(1)
    expect(page.get_by_role("log")).to_have_count(1)


@pytest.mark.parametrize("width", [360])
def test_phone_width(page_url, open_page, width):
    page = open_page(page_url, width=width, height=740)
    send(page, "중학생 아들 게임기 사주려고요, 40만원 정도")
    expect(top_card(page).locator(".product")).to_have_text("게임 콘솔")
    # The page itself never scrolls (only the conversation does): nothing sticks out.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    assert page.evaluate("() => document.documentElement.scrollHeight") <= 740
    for selector in ("#message", "#send", "#start-over", "#slots button[data-slot=budget]"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
        assert box["y"] >= 0 and box["y"] + box["height"] <= 740, selector
    card = top_card(page).bounding_box()
    assert card["x"] >= 0 and card["x"] + card["width"] <= width
    # The header's title and buttons do not run into each other.
    title, toggle = page.locator("h1").bounding_box(), page.locator("#language-toggle").bounding_box()
    assert title["x"] + title["width"] <= toggle["x"]
    # Touch targets stay finger-sized.
    assert page.locator("#send").bounding_box()["height"] >= 40
    assert page.locator("#slots button[data-slot=budget]").bounding_box()["height"] >= 32
