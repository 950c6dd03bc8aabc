"""How much kto says while it works: 0 = -q (results and errors only), 1 = normal,
2 = -v (also every compiled object and the commands kto runs). Set once by the CLI."""
LEVEL = 1
# True while progress rewrites a terminal status line (not a pipe, not TERM=dumb): build
# progress then ticks every few seconds, a live per-phase elapsed counter.
LIVE = False
