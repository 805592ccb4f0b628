"""Shadow runs: a challenger release run beside a slot's model on the same frames, compared, never obeyed.

Kept free of imports so that ``edge_agent.config`` can import :mod:`edge_agent.shadow.config`.
"""
