"""Renderers: each reads the graph (and the shared layout) and writes one kind of output."""
