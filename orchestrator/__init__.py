"""kto: kernel test orchestrator.

The package reads like the pipeline: config -> source + patches -> kconfig -> build ->
guest image -> vm -> workloads -> reports -> results, with bisect and nightly on top.
"""
