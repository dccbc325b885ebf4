"""One incident record across many runs: journals in, a merged and verified record out.

`load` finds and verifies journals (and their signatures), `merge` builds the record (one
timeline, a summary per host and target, outstanding items), and `markdown`, `html`, `timeline`
and `cacao` render it. `cli` holds the command-line handlers the `runbook` command wires in.
"""
