"""kto complete: shell completion from the real parser (so it cannot drift from --help).
scripts/kto-completion.bash calls ``kto complete --cword N -- WORD...`` and gets one
candidate a line; ``__files__`` asks the shell for file name completion."""
from __future__ import annotations

import argparse

FILES = "__files__"
_VALUE_SOURCES = {"--arch": "arches", "--run": "runs"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("complete", help="shell completion candidates (used by "
                       "scripts/kto-completion.bash)",
                       description="Print completion candidates for a kto command line, one "
                       "a line: subcommands, options, run names, arches, choices. Source "
                       "scripts/kto-completion.bash in bash to use it.")
    p.add_argument("--cword", type=int, required=True, metavar="N",
                   help="index of the word being completed (bash's COMP_CWORD)")
    p.add_argument("words", nargs="*", metavar="WORD",
                   help="the command line so far (bash's COMP_WORDS), after --")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    for c in candidates(args.words, args.cword):
        print(c)
    return 0


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({o for a in parser._actions for o in a.option_strings})


def _values(kind: str) -> list[str]:
    if kind == "arches":
        from orchestrator import arch
        return list(arch.ARCHES)
    try:
        from orchestrator import config
        return list(config.find_and_load(None)[1])
    except Exception:       # no runs.yaml, or a broken one: nothing to offer
        return []


def candidates(words: list[str], cword: int) -> list[str]:
    from orchestrator.cli import build_parser
    top = build_parser()
    cur = words[cword] if 0 <= cword < len(words) else ""
    subs = _subparsers(top)
    command = next((w for w in words[1:cword] if w in subs), None)
    parser = subs[command] if command else top
    prev = words[cword - 1] if cword >= 1 and cword - 1 < len(words) else ""
    by_option = {o: a for a in parser._actions for o in a.option_strings}
    if prev in by_option and by_option[prev].nargs != 0:
        action = by_option[prev]
        if action.choices:
            found = [str(c) for c in action.choices]
        elif prev in _VALUE_SOURCES:
            found = _values(_VALUE_SOURCES[prev])
        elif action.type is int or action.type is float:
            return []
        else:
            return [FILES]
    elif cur.startswith("-"):
        found = _options(parser)
    elif command is None:
        found = sorted(s for s in subs if s != "complete")
    else:
        # Which positional is this? Count the positional words before it.
        positionals = [a for a in parser._actions if not a.option_strings
                       and not isinstance(a, argparse._SubParsersAction)]
        taken, skip = 0, False
        for w in words[words.index(command) + 1:cword]:
            if skip:
                skip = False
            elif w.startswith("-"):
                a = by_option.get(w)
                skip = a is not None and a.nargs != 0
            else:
                taken += 1
        action = positionals[min(taken, len(positionals) - 1)] if positionals else None
        if action is None:
            return []
        if action.choices:
            found = [str(c) for c in action.choices]
        elif action.dest == "name":
            found = _values("runs")
        else:
            return [FILES]
    return [c for c in found if c.startswith(cur)]
