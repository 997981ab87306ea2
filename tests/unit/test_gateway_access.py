"""The pure parts of the gateway's doors: Host names, same-origin, the per-run internal token."""

from __future__ import annotations

from pydantic import SecretStr

from services.common.settings import Settings
from services.gateway.origins import same_origin
from services.launcher import internal_token


def test_trusted_hosts_default_to_this_machine_and_bracket_ipv6() -> None:
    assert Settings(gateway_host="127.0.0.1").trusted_hosts == ["localhost", "127.0.0.1", "[::1]"]
    assert Settings(gateway_host="::").trusted_hosts[-1] == "[::]"
    named = Settings(allowed_hosts="zhiku.example, ::1")  # type: ignore[arg-type]
    assert named.trusted_hosts == ["zhiku.example", "[::1]"]


def test_same_origin_compares_host_and_port() -> None:
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert same_origin("https://Zhiku.Example", "zhiku.example")
    assert not same_origin("http://127.0.0.1:9000", "127.0.0.1:8000")
    assert not same_origin("null", "127.0.0.1:8000")
    assert not same_origin("https://evil.example", "127.0.0.1:8000")


def test_make_run_makes_a_fresh_internal_token_unless_one_is_set() -> None:
    first, second = internal_token(Settings()), internal_token(Settings())
    assert first != second and len(first) >= 40
    given = Settings(internal_token=SecretStr("from-the-env"))
    assert internal_token(given) == "from-the-env"
