"""Where credentials live: one module per family of files (and the environment).

Each source appends what it finds to a `Collector`; none raises on a bad file: what it cannot
read becomes a problem naming the file and line.
"""
