"""The terminal chat: table formatting, and scripted Korean and English conversations piped
into `python -m clients.chat` against a real gateway + inference server."""

from __future__ import annotations

import subprocess

from clients.chat import display_width, format_table, split_reply
from clients.client import Item, RecommenderClient
from tests.support import PYTHON, ROOT, free_port

ITEMS = (Item(1, "smartwatch", "Smartwatch", "스마트워치", 0.4321),
         Item(2, "earbuds", "Wireless earbuds", "무선 이어폰", 0.2),
         Item(3, "camera", "Mirrorless camera", "미러리스 카메라", 0.05))


def test_display_width_counts_hangul_double():
    assert display_width("abc") == 3
    assert display_width("스마트워치") == 10
    assert display_width("무선 이어폰") == 11


def test_table_columns_line_up_in_both_languages():
    for language, name in (("ko", "미러리스 카메라"), ("en", "Mirrorless camera")):
        lines = format_table(ITEMS, language).splitlines()
        assert len(lines) == 2 + len(ITEMS)
        assert name in lines[-1]
        # The score column ends at the same terminal column on every row.
        assert len({display_width(line) for line in lines}) == 1
        assert lines[2].rstrip().endswith("43.2%")
    assert "순위" in format_table(ITEMS, "ko") and "rank" in format_table(ITEMS, "en")
    assert format_table((), "ko") == ""


def test_reply_recommendation_lines_move_into_the_table():
    reply = ("지금까지 이해한 내용: 30대 여성, 운동용.\n추천 상품:\n"
             "1. 스마트워치 (43%) - 운동용으로 딱 맞아요\n2. 무선 이어폰 (20%) - 비슷한 고객이 많이 골랐어요\n"
             "예산은 어느 정도 생각하세요? (예: 30만원)")
    before, reasons, after = split_reply(reply)
    assert before == ["지금까지 이해한 내용: 30대 여성, 운동용."]
    assert reasons == {1: "운동용으로 딱 맞아요", 2: "비슷한 고객이 많이 골랐어요"}
    assert after == ["예산은 어느 정도 생각하세요? (예: 30만원)"]
    table = format_table(ITEMS[:2], "ko", reasons).splitlines()
    assert table[0].split() == ["순위", "상품", "점수", "이유"]
    assert table[2].endswith("운동용으로 딱 맞아요")
    assert split_reply("Hello!") == (["Hello!"], {}, [])


def chat_script(target: str, lines: list[str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "clients.chat", "--target", target, *extra],
                          input="\n".join(lines) + "\n", capture_output=True, cwd=ROOT, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C"},  # no UTF-8 locale
                          encoding="utf-8")


def test_scripted_korean_chat(gateway_target):
    done = chat_script(gateway_target, ["안녕하세요", "30대 여성인데 운동할 때 쓸 거 찾아요", "예산은 40만원이요",
                                        "/reset", "감사합니다"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("bot> ") == 5
    assert "30대 여성" in out and "운동용" in out and "예산 40만원" in out
    assert "순위" in out and "스마트워치" in out  # the table, product names in Korean
    assert "처음부터" in out
    assert "error" not in done.stderr.lower()


def test_scripted_english_chat_and_quit(gateway_target):
    done = chat_script(gateway_target, ["hello", "a gift for my dad, he loves reading", "under 300,000 won",
                                        "/quit", "this line is never sent"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("bot> ") == 3
    assert "rank" in out and "E-reader" in out
    assert "budget 300,000 won" in out


def test_chat_client_state_round_trip(gateway_target):
    with RecommenderClient(gateway_target, timeout=10) as client:
        first = client.chat("I need earbuds for music")
        assert first.items and first.items[0].product_id == "earbuds"
        assert first.follow_up == "budget"
        second = client.chat("about 150,000 won", first.state)
        assert second.understood["interest"] == 1 and second.understood["budget"] == 150_000
        assert second.state.turn == 2
        vector = client.vectorize("30대 여성 운동용 30만원")
        assert vector.features[:4] == (35.0, 1.0, 300_000.0, 2.0)
        assert vector.language == "ko" and vector.vectorizer == "local"


def test_unreachable_gateway_exits_1():
    done = chat_script(f"127.0.0.1:{free_port()}", ["hello"], "--timeout", "1")
    assert done.returncode == 1
    assert "cannot reach" in done.stderr
