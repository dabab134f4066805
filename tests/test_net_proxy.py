"""The sandbox proxy's allow-list: which names and ports an `allow_hosts` entry lets through, and
what a bad entry says. (The proxy end to end: tests/security/test_security_sandbox.py.)"""

from __future__ import annotations

import pytest

from cockpit.core import net_proxy
from cockpit.core.net_proxy import allowed, parse_rules
from cockpit.errors import ConfigError


@pytest.mark.parametrize(("entry", "host", "port", "expected"), [
    ("pypi.org", "pypi.org", 443, True),
    ("pypi.org", "PyPI.org.", 80, True),  # names compare without case or a final dot
    ("pypi.org", "pypi.org", 22, False),  # the web's ports unless a port is given
    ("pypi.org", "evil-pypi.org", 443, False),
    ("pypi.org", "files.pypi.org", 443, False),
    ("*.pythonhosted.org", "files.pythonhosted.org", 443, True),
    ("*.pythonhosted.org", "a.b.pythonhosted.org", 443, True),
    ("*.pythonhosted.org", "pythonhosted.org", 443, False),
    ("*.pythonhosted.org", "evilpythonhosted.org", 443, False),
    ("localhost:8080", "localhost", 8080, True),
    ("localhost:8080", "localhost", 443, False),
    ("10.0.0.5", "10.0.0.5", 443, True),
])
def test_an_entry_allows_its_names_and_ports(entry, host, port, expected):
    assert allowed(parse_rules([("sandbox.allow_hosts", entry)]), host, port) is expected


def test_no_entry_allows_nothing():
    assert not allowed(parse_rules([]), "pypi.org", 443)


@pytest.mark.parametrize("entry", ["https://pypi.org", "pypi.org/simple", "*", "pypi.org:0", "a b", "*.*.org", ""])
def test_a_bad_entry_is_one_line_naming_the_key(entry):
    with pytest.raises(ConfigError) as error:
        parse_rules([("agents.claude.allow_hosts", entry)])
    assert str(error.value) == (f"config: key 'agents.claude.allow_hosts': {entry!r} is not a host "
                                "(name, name:port or *.domain)")


async def test_closing_one_sessions_proxies_leaves_the_others_running(tmp_path):
    """A removed session's proxy stops with it; another session's keeps listening."""
    home = tmp_path / "home"
    folder = home / "sandbox" / "net"
    folder.mkdir(parents=True)
    rules = parse_rules([("sandbox.allow_hosts", "example.com")])
    gone, kept = folder / "aaa-1.sock", folder / "bbb-1.sock"
    for path in (gone, kept):
        net_proxy.serve(path, rules, None)
    try:
        assert gone.exists() and kept.exists()
        net_proxy.close_under(home, "aaa")
        assert not gone.exists() and kept.exists()
        assert gone not in net_proxy._RUNNING and kept in net_proxy._RUNNING
    finally:
        net_proxy.close_under(home)
    assert not kept.exists()
