"""The interactive face of runbook: a Textual app over the same runner as the headless CLI.

Imported only when a run is started from a terminal; the engine and the steps never import it.
"""
