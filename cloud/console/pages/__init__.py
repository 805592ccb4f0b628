"""The console's pages, one module each: its page route(s), its forms and its live stream.

Each module exposes ``router``; :mod:`cloud.console.main` includes them all.
"""
