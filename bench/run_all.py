"""Run the benchmarks that fit in minutes and collect their tables in bench/out/ (see
README: Benchmarks). overhead.py runs first: its cached `kto run default` (which builds
the default kernel if it is missing) leaves the stored kernel boot_compare.py boots.

Not run here (each needs cold kernel builds, an hour or more on 2 cores): ci_cold.py,
tuxmake_compare.py, bisect_bench.py.
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script in ("report_throughput.py", "report_scaling.py", "parser_memory.py", "overhead.py",
               "boot_compare.py", "pipeline_times.py", "yaml_cost.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
