"""Cost of validating hostile runs.yaml files (schema.py's caps): wall time and peak RSS of
one `config.load` per case, each in a fresh process. Prints a markdown table and writes it
to bench/out/yaml_cost.md.

Cases: the repository's runs.yaml; 20000 list scalars (the per-scalar cost); a 1.3 KB
"billion laughs" of aliases; a file at the size cap full of scalars (the worst parse that
is attempted); /dev/zero."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from table import markdown, write  # noqa: E402

PROBE = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from orchestrator import config
from orchestrator.errors import ConfigError
t0 = time.perf_counter()
try:
    config.load({path!r}); outcome = "loaded"
except ConfigError as e:
    outcome = str(e).split(": ", 1)[-1][:60]
print(json.dumps([time.perf_counter() - t0,
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, outcome]))
"""


def cases(tmp: Path) -> dict[str, Path]:
    import shutil
    from orchestrator import schema
    shutil.copytree(REPO / "kconfigs", tmp / "kconfigs")
    scalars = tmp / "scalars.yaml"
    scalars.write_text("version: 1\nruns:\n  d:\n    arches: [" + ", ".join(["x86_64"] * 20000)
                       + "]\n")
    laughs = ["version: 1", "x0: &a0 [lol]"] + [
        f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    bomb = tmp / "laughs.yaml"
    bomb.write_text("\n".join(laughs + ["runs: {d: {arches: [x86_64], description: *a11}}"])
                    + "\n")
    full = tmp / "at-cap.yaml"
    full.write_text("version: 1\nruns:\n  d:\n    arches: [" + "a," * (schema.MAX_BYTES // 2 - 40)
                    + "]\n")
    return {"repo runs.yaml": REPO / "runs.yaml", "20000 scalars": scalars,
            "billion laughs": bomb, "256 KiB of scalars": full, "/dev/zero": Path("/dev/zero")}


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, path in cases(Path(d)).items():
            out = subprocess.run([sys.executable, "-c", PROBE.format(repo=str(REPO),
                                                                      path=str(path))],
                                 capture_output=True, text=True, check=True).stdout
            secs, rss, outcome = json.loads(out)
            size = "-" if path.is_char_device() else f"{path.stat().st_size // 1024} KiB"
            rows.append((name, size, f"{secs:.3f}", rss, outcome))
    write("yaml_cost.md", "\n".join(markdown(["case", "size", "seconds", "peak RSS MB",
                                              "outcome"], rows, "lrrrl")) + "\n")


if __name__ == "__main__":
    main()
