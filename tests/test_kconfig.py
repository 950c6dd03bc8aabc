"""Kconfig fragments: parsing errors with file:line, merge order, verify, and the
explanation of an option that did not survive (evaluated on a small Kconfig tree)."""
import textwrap

import pytest

from orchestrator import kconfig
from orchestrator.errors import ConfigError


def frag(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return kconfig.parse_fragment(p)


def test_parse_and_merge_later_wins(tmp_path):
    a = frag(tmp_path, "a.config", "# c\nCONFIG_A=y\nCONFIG_B=m\n\n# CONFIG_C is not set\n")
    b = frag(tmp_path, "b.config", "CONFIG_B=y\nCONFIG_S=\"x y\"\n")
    assert a.options == {"A": "y", "B": "m", "C": "n"} and a.lines["C"] == 5
    merged = kconfig.merge([a, b])
    assert merged["B"].value == "y" and merged["B"].origin.endswith("b.config:1")
    assert merged["A"].origin.endswith("a.config:2")
    text = kconfig.render(merged)
    assert "# CONFIG_C is not set" in text and 'CONFIG_S="x y"' in text


def test_parse_errors_name_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"bad.config:2: not a Kconfig assignment: 'KASAN=y'"):
        frag(tmp_path, "bad.config", "CONFIG_A=y\nKASAN=y\n")
    with pytest.raises(ConfigError, match=r"empty.config:1: CONFIG_A has no value"):
        frag(tmp_path, "empty.config", "CONFIG_A=\n")
    with pytest.raises(ConfigError, match=r"cannot read kconfig fragment"):
        kconfig.parse_fragment(tmp_path / "missing.config")


def test_config_hash_ignores_comments_and_order():
    a = "# Linux 6.12.1\nCONFIG_A=y\nCONFIG_B=y\n"
    b = "# Linux 6.12.2 other header\nCONFIG_B=y\nCONFIG_A=y\n"
    assert kconfig.config_hash(a) == kconfig.config_hash(b)
    assert kconfig.config_hash(a) != kconfig.config_hash(a.replace("B=y", "B=m"))


KCONFIG = """\
config BUG
	bool "BUG() support"

config GENERIC_BUG
	bool
	depends on BUG

config DEBUG_BUGVERBOSE
	bool "Verbose BUG() reporting"
	depends on BUG && (GENERIC_BUG || HAVE_DEBUG_BUGVERBOSE)

config SLUB_TINY
	bool "tiny"

config KASAN
	bool "KASAN"
	depends on !SLUB_TINY

if KASAN
config KASAN_VMALLOC
	bool "vmalloc"
	depends on MMU
endif

config HIDDEN
	bool

config SELECTOR
	bool "sel"
	select HIDDEN
"""


@pytest.fixture
def index(tmp_path):
    (tmp_path / "Kconfig").write_text(KCONFIG)
    (tmp_path / "arch" / "x86").mkdir(parents=True)
    (tmp_path / "arch" / "arm64").mkdir(parents=True)
    (tmp_path / "arch" / "arm64" / "Kconfig").write_text("config ARM_ONLY\n\tbool \"a\"\n")
    return kconfig.KconfigIndex(tmp_path, "x86")


def req(sym, val):
    return {sym: kconfig.Requested(sym, val, "kconfigs/x.config:3")}


def test_verify_names_unmet_dependency(index):
    final = {"BUG": "n"}
    [p] = kconfig.verify(req("DEBUG_BUGVERBOSE", "y"), final, index)
    msg = str(p)
    assert msg.startswith("kconfigs/x.config:3: CONFIG_DEBUG_BUGVERBOSE=y did not survive")
    assert "unmet dependency BUG (BUG=n)" in msg
    assert "GENERIC_BUG || HAVE_DEBUG_BUGVERBOSE" in msg


def test_verify_negated_and_if_block_dependencies(index):
    [p] = kconfig.verify(req("KASAN", "y"), {"SLUB_TINY": "y"}, index)
    assert "! SLUB_TINY (SLUB_TINY=y)" in str(p)
    [p] = kconfig.verify(req("KASAN_VMALLOC", "y"), {"KASAN": "n", "MMU": "y"}, index)
    assert "KASAN (KASAN=n)" in str(p) and "MMU" not in p.reason


def test_verify_hidden_and_unknown_symbols(index):
    [p] = kconfig.verify(req("HIDDEN", "y"), {}, index)
    assert "no prompt: it is only selected (by SELECTOR)" in str(p)
    [p] = kconfig.verify(req("ARM_ONLY", "y"), {}, index)   # other arch's Kconfig not read
    assert "no Kconfig symbol ARM_ONLY for this arch" in str(p)
    [p] = kconfig.verify(req("HIDDEN", "n"), {"HIDDEN": "y", "SELECTOR": "y"}, index)
    assert "selected by SELECTOR" in str(p)


def test_verify_passes_when_values_survive(index):
    assert kconfig.verify(req("KASAN", "y"), {"KASAN": "y"}, index) == []
    assert kconfig.verify(req("KASAN", "n"), {}, index) == []
    assert kconfig.verify({"S": kconfig.Requested("S", '"a"', "f:1")}, {"S": '"a"'}) == []


@pytest.mark.parametrize("expr, final, value", [
    ("A && B", {"A": "y", "B": "m"}, 1),
    ("A || B", {"A": "n", "B": "m"}, 1),
    ("!A", {"A": "m"}, 1),
    ("A = y", {"A": "y"}, 2),
    ("A != y", {"A": "y"}, 0),
    ("(A || B) && !C", {"B": "y"}, 2),
    ("64BIT", {"64BIT": "y"}, 2),
])
def test_expression_evaluation(expr, final, value):
    assert kconfig._eval(expr, final) == value
