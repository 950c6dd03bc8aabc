"""Run every benchmark and collect their tables in bench/out/ (see README: Benchmarks)."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script in ("report_throughput.py", "report_scaling.py", "pipeline_times.py", "yaml_cost.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
