"""The optimizer in three layers: ``domain`` (bottom), ``pipeline`` (middle), ``apps`` (top).

Each imports only from the layers below it (and from ``cvxrebalance.constraints`` and
``cvxrebalance.cost_models``, which sit between ``domain`` and ``pipeline``).
"""
