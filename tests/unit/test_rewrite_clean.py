from services.gateway.chat.rewrite import MAX_QUERY_CHARS, _clean


def test_clean_keeps_the_first_line_without_quotes_or_labels() -> None:
    assert _clean('  "天工X7 的额定功率是多少？"\n解释：……') == "天工X7 的额定功率是多少？"
    assert _clean("follow-up: When was it founded?") == "When was it founded?"
    assert _clean("\n\n") == ""
    assert len(_clean("问" * 1000)) == MAX_QUERY_CHARS
