"""Patch series parsing: real fixtures built with git (format-patch / am) in tmp dirs."""
from __future__ import annotations

import os
import quopri
import random
import re
import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.series import Patch, Series, load_commit_range, load_series

ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Ann Author", "GIT_AUTHOR_EMAIL": "ann@example.org",
    "GIT_COMMITTER_NAME": "Cee Committer", "GIT_COMMITTER_EMAIL": "cee@example.org",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}


def git(repo: Path, *args: str, input: str | None = None, env: dict | None = None) -> str:
    cp = subprocess.run(["git", "-C", str(repo), *args], input=input, text=True,
                        capture_output=True, env={**ENV, **(env or {})})
    assert cp.returncode == 0, f"git {args}: {cp.stderr}"
    return cp.stdout


FOO_C = """\
#include <stdio.h>

static int alpha(int x)
{
	int y = x + 1;

	y *= 2;
	y -= 3;
	y += 4;
	return y;
}

static int beta(int x)
{
	int z = x;

	z <<= 1;
	z >>= 2;
	z ^= 5;
	return z;
}

int gamma_fn(int a, int b)
{
	int r = a;

	r += b;
	r *= alpha(a);
	r -= beta(b);
	return r;
}
"""

BAR_C = """\
#include <stdlib.h>

void *bar_alloc(size_t n)
{
	void *p;

	p = malloc(n);
	if (!p)
		return NULL;
	return p;
}
"""

LONG_SUBJECT = ("mm/foo: make alpha subtract a little more so that the overflow reported by "
                "the fuzzer goes away for good")
SUBJECTS = [
    "mm/foo: make alpha triple",
    "mm/foo: start beta from x plus one",
    "mm/foo: add delta helper",
    "mm/bar: zero new allocations",
    LONG_SUBJECT,
]


def _commit(repo: Path, path: str, old: str, new: str, subject: str, env: dict | None = None):
    f = repo / path
    text = f.read_text()
    assert old in text, old
    f.write_text(text.replace(old, new, 1))
    git(repo, "commit", "-qam", subject, env=env)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A tree with a base commit and a 5-commit series where each patch needs the previous."""
    r = tmp_path_factory.mktemp("tree") / "linux"
    r.mkdir()
    git(r, "init", "-q", "-b", "master")
    (r / "mm").mkdir()
    (r / "mm/foo.c").write_text(FOO_C)
    (r / "mm/bar.c").write_text(BAR_C)
    git(r, "add", ".")
    git(r, "commit", "-qm", "base")
    git(r, "tag", "base")
    _commit(r, "mm/foo.c", "\ty *= 2;\n", "\ty *= 3;\n", SUBJECTS[0])
    # Changes the first line of beta's body: the @@ context names alpha, the hunk shows beta.
    _commit(r, "mm/foo.c", "\tint z = x;\n", "\tint z = x + 1;\n", SUBJECTS[1])
    _commit(r, "mm/foo.c", "\treturn r;\n}\n",
            "\treturn r + delta(a);\n}\n\nstatic int delta(int v)\n{\n\treturn v - 1;\n}\n",
            SUBJECTS[2])
    _commit(r, "mm/bar.c", "\tp = malloc(n);\n", "\tp = calloc(1, n);\n", SUBJECTS[3])
    # Depends on patch 1 (same line), non-ASCII author, subject long enough to be folded.
    _commit(r, "mm/foo.c", "\ty *= 3;\n\ty -= 3;\n", "\ty *= 3;\n\ty -= 4;\n", LONG_SUBJECT,
            env={"GIT_AUTHOR_NAME": "Jörg Müller", "GIT_AUTHOR_EMAIL": "jm@example.de"})
    return r


def format_patch(repo: Path, *args: str) -> str:
    return git(repo, "format-patch", "--stdout", *args, "base..master")


def split_mbox(text: str) -> list[str]:
    return re.split(r"(?m)^(?=From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$)", text)[1:]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_applies(repo: Path, tmp: Path, series: Series):
    """git am of Series.mbox() on a fresh clone at base gives exactly the series' tree."""
    clone = tmp / f"clone{random.random()}"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, env=ENV)
    git(clone, "checkout", "-q", "base")
    git(clone, "am", "-q", input=series.mbox())
    assert git(clone, "rev-parse", "HEAD^{tree}") == git(repo, "rev-parse", "master^{tree}")
    log = git(clone, "log", "--format=%s|%an <%ae>", "--reverse", "base..HEAD").splitlines()
    assert log == [f"{p.subject}|{p.author}" for p in series.patches]


def err(spec, base_dir=None) -> str:
    with pytest.raises(ConfigError) as e:
        load_series(spec, base_dir)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- mbox

def test_mbox_with_cover_letter(repo, tmp_path):
    mbox = write(tmp_path / "series.mbox", format_patch(repo, "-v2", "--cover-letter"))
    s = load_series(mbox)
    assert [p.subject for p in s.patches] == SUBJECTS
    assert [(p.index, p.total, p.version) for p in s.patches] == [(i, 5, 2) for i in range(1, 6)]
    assert s.version == 2 and s.cover_subject == "*** SUBJECT HERE ***"
    assert s.origin == str(mbox)
    assert s.patches[0].source == f"{mbox} message 2"   # message 1 is the cover letter
    assert s.patches[0].author == "Ann Author <ann@example.org>"
    assert s.patches[4].author == "Jörg Müller <jm@example.de>"
    assert s.patches[2].label() == 'patch 3/5 "mm/foo: add delta helper"'
    assert all(p.commit is None for p in s.patches)
    # the long subject really was folded over header lines, and the author RFC 2047 encoded
    raw = s.patches[4].text
    assert re.search(r"(?m)^Subject: .*\n[ \t]+\S", raw)
    assert "=?UTF-8?q?" in raw
    assert_applies(repo, tmp_path, s)


def test_mbox_shuffled_with_reply_is_reordered(repo, tmp_path):
    msgs = split_mbox(format_patch(repo, "--cover-letter"))
    reply = (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Reviewer <rev@example.org>\nSubject: Re: [PATCH 2/5] " + SUBJECTS[1] + "\n\n"
        "> -\tint z = x;\n> +\tint z = x + 1;\n\nMaybe this instead:\n\n"
        "diff --git a/mm/foo.c b/mm/foo.c\n--- a/mm/foo.c\n+++ b/mm/foo.c\n"
        "@@ -15 +15 @@ static int beta(int x)\n-\tint z = x;\n+\tint z = x + 2;\n")
    msgs.append(reply)
    random.Random(4).shuffle(msgs)
    mbox = write(tmp_path / "shuffled.mbox", "".join(msgs))
    s = load_series(mbox)
    assert [p.subject for p in s.patches] == SUBJECTS
    assert s.cover_subject == "*** SUBJECT HERE ***" and s.version is None
    # sources name the position in the shuffled file
    n = next(i for i, m in enumerate(msgs, 1) if "[PATCH 1/5]" in m)
    assert s.patches[0].source == f"{mbox} message {n}"
    assert_applies(repo, tmp_path, s)


def test_unnumbered_mbox_keeps_file_order(repo, tmp_path):
    s = load_series(write(tmp_path / "s.mbox", format_patch(repo, "-N")))
    assert [p.subject for p in s.patches] == SUBJECTS
    assert [(p.index, p.total) for p in s.patches] == [(i, 5) for i in range(1, 6)]


def test_single_patch_file_and_base_dir(repo, tmp_path):
    text = git(repo, "format-patch", "--stdout", "-1", "master~1")
    write(tmp_path / "one.patch", text)
    s = load_series("one.patch", base_dir=tmp_path)
    assert len(s.patches) == 1
    p = s.patches[0]
    assert (p.index, p.total, p.subject, p.source) == (1, 1, SUBJECTS[3], "one.patch")
    assert p.files() == ["mm/bar.c"]
    assert p.functions() == {"bar_alloc"}


@pytest.mark.parametrize("prefix, version", [
    ("[PATCH RFC v2 0{n}/05]", 2), ("[RFC PATCH {n}/5]", None),
    ("[PATCH net-next v3 {n}/5]", 3), ("[RFC][PATCH v4 {n}/5]", 4),
])
def test_subject_prefix_variants(repo, tmp_path, prefix, version):
    msgs = split_mbox(format_patch(repo, "-N"))
    msgs = [m.replace("Subject: [PATCH] ", f"Subject: {prefix.format(n=i)} ", 1)
            for i, m in enumerate(msgs, 1)]
    random.Random(1).shuffle(msgs)
    s = load_series(write(tmp_path / "x.mbox", "".join(msgs)))
    assert [p.subject for p in s.patches] == SUBJECTS
    assert [(p.index, p.total, p.version) for p in s.patches] == [
        (i, 5, version) for i in range(1, 6)]
    assert s.version == version


def test_single_unnumbered_patch_prefix(repo, tmp_path):
    text = git(repo, "format-patch", "--stdout", "-1", "master~4")
    assert "Subject: [PATCH] " in text
    p = load_series(write(tmp_path / "x.patch", text)).patches[0]
    assert (p.subject, p.version, p.index, p.total) == (SUBJECTS[0], None, 1, 1)


def test_b4_mbx_with_link_trailers(repo, tmp_path):
    out = []
    for i, m in enumerate(split_mbox(format_patch(repo, "-v3")), 1):
        m = re.sub(r"^From [0-9a-f]{40} .*", "From git@z Thu Jan  1 00:00:00 1970", m, count=1)
        m = m.replace("\n---\n", f"\nLink: https://lore.kernel.org/r/2024-v3-{i}@example.org\n---\n",
                      1)
        out.append(m)
    s = load_series(write(tmp_path / "v3_20240101_ann_mm_foo.mbx", "".join(out)))
    assert s.version == 3 and [p.subject for p in s.patches] == SUBJECTS
    assert "Link: https://lore.kernel.org/r/2024-v3-2@example.org" in s.patches[1].text
    assert_applies(repo, tmp_path, s)


def test_in_body_from_sets_author(repo, tmp_path):
    text = git(repo, "format-patch", "--stdout", "--from=Sam Sender <sam@example.org>",
               "-1", "master")
    assert "From: Sam Sender <sam@example.org>" in text     # mail sender differs
    p = load_series(write(tmp_path / "fwd.patch", text)).patches[0]
    assert p.author == "Jörg Müller <jm@example.de>"
    assert p.subject == LONG_SUBJECT


def test_quoted_printable_and_encoded_subject(repo, tmp_path):
    """A mailer re-encoded the message: QP body, encoded folded subject; git am still takes it."""
    text = git(repo, "format-patch", "--stdout", "-1", "master")
    head, body = text.split("\n\n", 1)
    head = head.split("\nSubject: ")[0] + (
        "\nSubject: [PATCH] =?UTF-8?q?mm/foo:_make_alpha_subtract_a_little_more?=\n"
        " =?UTF-8?q?_=E2=80=94_so_the_fuzzer_is_happy?=\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable")
    qp = quopri.encodestring(body.encode()).decode()
    assert "=3D" in qp and "--=20\n" in qp
    mbox = write(tmp_path / "qp.patch", head + "\n\n" + qp)
    p = load_series(mbox).patches[0]
    assert p.subject == "mm/foo: make alpha subtract a little more — so the fuzzer is happy"
    assert p.author == "Jörg Müller <jm@example.de>"
    assert p.files() == ["mm/foo.c"] and p.functions() == {"alpha"}
    # really usable by git am
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, env=ENV)
    git(clone, "checkout", "-q", "master~1")
    git(clone, "am", "-q", input=p.text)
    assert git(clone, "rev-parse", "HEAD^{tree}") == git(repo, "rev-parse", "master^{tree}")
    assert git(clone, "log", "-1", "--format=%s").strip() == p.subject


# ---------------------------------------------------------------- directories

def test_directory_of_patches(repo, tmp_path):
    d = tmp_path / "out"
    git(repo, "format-patch", "-q", "--cover-letter", "-o", str(d), "base..master")
    s = load_series(d)
    assert [p.subject for p in s.patches] == SUBJECTS
    assert s.cover_subject == "*** SUBJECT HERE ***"
    assert s.patches[1].source == str(d / "0002-mm-foo-start-beta-from-x-plus-one.patch")
    assert_applies(repo, tmp_path, s)


def test_directory_with_quilt_series_file_gives_order(repo, tmp_path):
    d = tmp_path / "q"
    git(repo, "format-patch", "-q", "-N", "-o", str(d), "base..master")
    files = sorted(d.iterdir())
    names = [f"{c}.patch" for c in "zcamq"]     # filename order would be wrong
    for f, n in zip(files, names):
        f.rename(d / n)
    (d / "stray.patch").write_text("not listed in series, so not part of it\n")
    write(d / "series", "# quilt series\n\n" + "\n".join(
        f"{n} -p1" if i == 2 else f"{n}  # comment" if i == 3 else n
        for i, n in enumerate(names)) + "\n")
    s = load_series(d)
    assert [p.subject for p in s.patches] == SUBJECTS
    assert [p.source for p in s.patches] == [str(d / n) for n in names]
    assert_applies(repo, tmp_path, s)
    # without the series file: filename order
    (d / "series").unlink()
    (d / "stray.patch").unlink()
    s = load_series(d)
    assert [p.source for p in s.patches] == [str(d / n) for n in sorted(names)]


def test_numbering_beats_shuffled_file_names(repo, tmp_path):
    d = tmp_path / "n"
    git(repo, "format-patch", "-q", "-o", str(d), "base..master")
    for f, c in zip(sorted(d.iterdir()), "zcamq"):
        f.rename(d / f"{c}.patch")
    assert [p.subject for p in load_series(d).patches] == SUBJECTS


def test_series_file_names_missing_patch(repo, tmp_path):
    d = tmp_path / "q"
    git(repo, "format-patch", "-q", "-o", str(d), "base..master~3")
    first, second = sorted(p.name for p in d.iterdir())
    write(d / "series", f"# order\n{first}\n\nnope.patch\n{second}\n")
    assert err(d) == f"{d}/series:4: nope.patch does not exist"


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    assert err(tmp_path / "empty") == f"{tmp_path}/empty: no .patch files (empty series)"


# ---------------------------------------------------------------- errors

def test_gap(repo, tmp_path):
    msgs = split_mbox(format_patch(repo))
    del msgs[2]
    f = write(tmp_path / "series.mbox", "".join(msgs))
    assert err(f) == (f"{f}: patch 3/5 is missing (have 1,2,4,5); to try only what is "
                      "there, give --partial (or --patches 1-2,4-5)")
    del msgs[2]
    assert err(write(f, "".join(msgs))) == (
        f"{f}: patches 3/5, 4/5 are missing (have 1,2,5); to try only what is there, give "
        "--partial (or --patches 1-2,5)")


def test_selection_takes_lone_or_chosen_patches(repo, tmp_path):
    from orchestrator.series import Selection, parse_numbers
    msgs = split_mbox(format_patch(repo))
    lone = write(tmp_path / "lone.patch", msgs[0])          # a reviewer's [PATCH 1/5]
    assert err(lone).endswith("give --partial (or --patches 1)")
    s = load_series(lone, select=Selection(partial=True))
    assert [p.label() for p in s.patches] == [f'patch 1/5 "{SUBJECTS[0]}"']
    f = write(tmp_path / "series.mbox", "".join(msgs))
    s = load_series(f, select=Selection(numbers=parse_numbers("1,3-4")))
    assert [p.index for p in s.patches] == [1, 3, 4]
    assert [p.subject for p in s.patches] == [SUBJECTS[0], SUBJECTS[2], SUBJECTS[3]]
    with pytest.raises(ConfigError, match=r"--patches 2,6: patch 6/5 is not in it"):
        load_series(f, select=Selection(numbers=parse_numbers("2,6")))
    with pytest.raises(ConfigError, match=r"--patches 1,3-1: '3-1' is not an ascending"):
        parse_numbers("1,3-1")
    with pytest.raises(ConfigError, match=r"'x' is not a number"):
        parse_numbers("x")
    # A commit range is selected by position in the range.
    s = load_series(f"{repo}:base..master", select=Selection(numbers=(2,)))
    assert [p.index for p in s.patches] == [2]


def test_duplicate(repo, tmp_path):
    msgs = split_mbox(format_patch(repo))
    msgs.insert(3, msgs[1])
    f = write(tmp_path / "series.mbox", "".join(msgs))
    assert err(f) == (f'{f}: two messages are patch 2/5: message 2 "{SUBJECTS[1]}" and '
                      f'message 4 "{SUBJECTS[1]}"')


def test_inconsistent_total(repo, tmp_path):
    msgs = split_mbox(format_patch(repo))
    msgs[2] = msgs[2].replace("[PATCH 3/5]", "[PATCH 3/6]")
    f = write(tmp_path / "series.mbox", "".join(msgs))
    assert err(f) == f"{f}: message 3 says 3/6 but the series is 5 patches"


def test_total_from_cover_letter(repo, tmp_path):
    msgs = split_mbox(format_patch(repo, "--cover-letter"))
    msgs[0] = msgs[0].replace("[PATCH 0/5]", "[PATCH 0/6]")
    f = write(tmp_path / "series.mbox", "".join(msgs))
    assert err(f) == f"{f}: message 2 says 1/5 but the series is 6 patches"


def test_mixed_versions(repo, tmp_path):
    v2 = split_mbox(format_patch(repo, "-v2"))
    v3 = split_mbox(format_patch(repo, "-v3"))
    f = write(tmp_path / "series.mbox", "".join(v2[:3] + v3[3:]))
    assert err(f) == (f"{f}: mixed versions in one series: v2 (message 1, message 2, "
                      f"message 3) and v3 (message 4, message 5)")


def test_patch_without_diff(repo, tmp_path):
    msgs = split_mbox(format_patch(repo, "-v2"))[:4]
    msgs = [m.replace("/5]", "/4]") for m in msgs]
    msgs[1] = msgs[1].split("\n---\n")[0] + "\n"
    f = write(tmp_path / "series.mbox", "".join(msgs))
    assert err(f) == f'{f} message 2: patch 2/4 "{SUBJECTS[1]}" has no diff'


def test_mixed_numbering(repo, tmp_path):
    msgs = split_mbox(format_patch(repo))
    msgs[1] = msgs[1].replace("[PATCH 2/5]", "[PATCH]")
    f = write(tmp_path / "series.mbox", "".join(msgs))
    assert err(f) == f'{f}: message 2 "{SUBJECTS[1]}" has no n/m numbering but message 1 is 1/5'


def test_only_cover_letter_is_empty(repo, tmp_path):
    cover = split_mbox(format_patch(repo, "--cover-letter"))[0]
    f = write(tmp_path / "series.mbox", cover)
    assert err(f) == f"{f}: no patches in it (empty series)"
    assert err(write(f, "")) == f"{f}: no patches in it (empty series)"


def test_missing_path(tmp_path):
    assert err(tmp_path / "nope.mbox") == f"{tmp_path}/nope.mbox: no such file or directory"
    assert err("nope.mbox", tmp_path) == "nope.mbox: no such file or directory"
    assert err("") == "patch series: empty path"


def test_unreadable_file(tmp_path, monkeypatch):
    f = write(tmp_path / "locked.mbox", "x")
    f.chmod(0)
    if os.geteuid() == 0:   # root reads anything: simulate the permission error
        def denied(self):
            raise PermissionError(13, "Permission denied", str(self))
        monkeypatch.setattr(Path, "read_bytes", denied)
    assert err(f) == f"{f}: cannot read: Permission denied"


def test_series_file_lists_patch_twice(repo, tmp_path):
    d = tmp_path / "q"
    git(repo, "format-patch", "-q", "-o", str(d), "base..master~3")
    first, second = sorted(p.name for p in d.iterdir())
    write(d / "series", f"{first}\n{second}\n{first}\n")
    assert err(d) == f"{d}/series:3: {first} is listed twice (also line 1)"


def test_bare_diff_is_refused(tmp_path):
    f = write(tmp_path / "bare.patch", "--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n")
    assert err(f).startswith(f"{f}: not a mail-format patch")


# ---------------------------------------------------------------- commit ranges

def test_commit_range(repo):
    s = load_series(f"{repo}:base..master")
    shas = git(repo, "rev-list", "--reverse", "base..master").split()
    assert [p.commit for p in s.patches] == shas
    assert [p.subject for p in s.patches] == SUBJECTS
    assert [(p.index, p.total) for p in s.patches] == [(i, 5) for i in range(1, 6)]
    assert s.patches[4].author == "Jörg Müller <jm@example.de>"
    assert s.patches[0].source == f"{repo}:{shas[0][:12]}"
    assert s.origin == f"{repo}:base..master"
    assert s.patches[1].functions() == {"beta"}
    # the API form and a path relative to base_dir agree
    assert load_commit_range(repo, "base..master").patches == s.patches
    rel = load_series(f"{repo.name}:base..master", base_dir=repo.parent)
    assert [p.commit for p in rel.patches] == shas


def test_commit_range_applies(repo, tmp_path):
    assert_applies(repo, tmp_path, load_series(f"{repo}:base..master"))


def test_commit_range_errors(repo, tmp_path):
    assert err(f"{repo}:master..master") == f"{repo}:master..master: the range has no commits (empty series)"
    e = err(f"{repo}:base..nosuch")
    assert e.startswith(f"{repo}:base..nosuch: git rev-list failed: ")
    assert err(f"{tmp_path}/gone:a..b") == f"{tmp_path}/gone:a..b: {tmp_path}/gone is not a directory"
    assert err(f"{repo}:--all..x") == f"{repo}:--all..x: '--all..x' is not a revision range"


# ---------------------------------------------------------------- hunks and functions

def test_hunks_and_functions(repo, tmp_path):
    s = load_series(write(tmp_path / "s.mbox", format_patch(repo)))
    p1, p2, p3, p4, p5 = s.patches
    [h] = p1.hunks()
    assert (h.path, h.old_start, h.old_len, h.new_start, h.new_len) == ("mm/foo.c", 4, 7, 4, 7)
    assert h.header_func == "static int alpha(int x)"
    assert h.text.startswith("@@ -4,7 +4,7 @@ static int alpha(int x)\n")
    assert "-\ty *= 2;\n+\ty *= 3;\n" in h.text and "-- " not in h.text
    assert p1.functions() == {"alpha"}
    # the @@ context names alpha, but the changed line is in beta's body
    [h] = p2.hunks()
    assert h.header_func == "static int alpha(int x)"
    assert p2.functions() == {"beta"}
    # a change at gamma_fn's end plus a new function definition
    assert p3.functions() == {"gamma_fn", "delta"}
    assert p4.files() == ["mm/bar.c"] and p4.functions() == {"bar_alloc"}
    assert p5.functions() == {"alpha"}


def test_functions_syscall_and_non_definitions(tmp_path):
    body = (
        "diff --git a/mm/mmap.c b/mm/mmap.c\n--- a/mm/mmap.c\n+++ b/mm/mmap.c\n"
        "@@ -10,6 +10,9 @@ SYSCALL_DEFINE6(mmap_pgoff, unsigned long, addr, unsigned long, len,\n"
        " \tint a;\n \tint b;\n \tint c;\n+\tif (len)\n+\t\treturn -EINVAL;\n+\n \treturn 0;\n"
        " }\n \n"
        "@@ -40,3 +43,4 @@ out:\n EXPORT_SYMBOL(foo);\n+EXPORT_SYMBOL(bar);\n"
        " static int helper(void);\n \n"
        "@@ -60,5 +64,6 @@ static int gamma(void)\n \treturn 0;\n }\n \n+static int counter;\n"
        " int zeta(void)\n {\n"
        "diff --git a/mm/old.c b/mm/new.c\nsimilarity index 100%\n"
        "rename from mm/old.c\nrename to mm/new.c\n")
    p = Patch(1, 1, "s", "a <a@b>", None, "x", "", body=body)
    assert "__do_sys_mmap_pgoff" in p.functions()
    assert "__x64_sys_mmap_pgoff" in p.functions()
    # declarations, macro uses, labels and file-scope additions after a '}' are not functions
    assert not p.functions() & {"EXPORT_SYMBOL", "helper", "out", "SYSCALL_DEFINE6", "gamma",
                                "zeta", "counter"}
    assert p.files() == ["mm/mmap.c", "mm/old.c", "mm/new.c"]
    assert [h.header_func for h in p.hunks()] == [
        "SYSCALL_DEFINE6(mmap_pgoff, unsigned long, addr, unsigned long, len,", "out:",
        "static int gamma(void)"]
