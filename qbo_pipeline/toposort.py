"""Dependency order with :mod:`graphlib`, ties broken by a priority.

The entity restore order and a restore plan's step order both need "each node after what it
needs, and among the nodes ready at once the one with the smallest priority first".
:class:`graphlib.TopologicalSorter` finds the ready nodes and the cycles; a heap picks among them.
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

N = TypeVar("N", bound=Hashable)


def priority_order(graph: Mapping[N, Iterable[N]], priority: Callable[[N], Any]) -> list[N]:
    """Every node of ``graph`` (node -> the nodes it needs) after the nodes it needs.

    Whenever several nodes are ready, the one with the smallest ``(priority(node), node)`` comes
    next, so the order is stable. A node only named as a need is ordered too.

    Raises:
        graphlib.CycleError: If the nodes need each other in a cycle (``args[1]`` names it).
    """
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    ready = [(priority(node), node) for node in sorter.get_ready()]
    heapq.heapify(ready)
    ordered: list[N] = []
    while ready:
        _, node = heapq.heappop(ready)
        ordered.append(node)
        sorter.done(node)
        for other in sorter.get_ready():
            heapq.heappush(ready, (priority(other), other))
    return ordered
