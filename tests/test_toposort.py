from __future__ import annotations

import graphlib

import pytest

from qbo_pipeline import entities
from qbo_pipeline.toposort import priority_order


def test_each_node_comes_after_what_it_needs_smallest_priority_first() -> None:
    graph = {"c": {"a"}, "b": set(), "a": set(), "d": {"b", "c"}}
    # "a" and "b" are ready at once; "c" becomes ready after "a" and wins over "b" by priority.
    priority = {"a": 0, "c": 1, "b": 2, "d": 3}
    assert priority_order(graph, priority.__getitem__) == ["a", "c", "b", "d"]
    assert priority_order(graph, lambda node: 0) == ["a", "b", "c", "d"], "ties by node"


def test_a_cycle_is_named() -> None:
    with pytest.raises(graphlib.CycleError) as info:
        priority_order({"a": {"b"}, "b": {"a"}, "c": set()}, lambda node: 0)
    assert set(info.value.args[1]) == {"a", "b"}


def test_the_restore_order_puts_every_entity_after_its_dependencies() -> None:
    order = entities.restore_order()
    assert sorted(order) == sorted(entities.ENTITIES)
    position = {name: i for i, name in enumerate(order)}
    for name in order:
        assert all(
            position[dep] < position[name] for dep in entities.dependencies(entities.get(name))
        )
    assert order[:2] == ("CompanyInfo", "Preferences"), "singletons first when ready"
