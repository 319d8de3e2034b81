"""The order in which PyTorch's autograd engine runs a graph's nodes on the CPU.

Pure Python over plain lists (no torch): the trace uses it to give the nodes of
light blocks, which run without hooks, their backward steps.
"""

from __future__ import annotations

__all__ = ["engine_order"]


def engine_order(children: list[list[tuple[int, int]]], seq: list[int]) -> list[int]:
    """The order in which PyTorch's autograd engine runs a graph's nodes, on the CPU.

    ``children[k]`` lists node ``k``'s inputs as (key or -1, output_nr), in
    ``next_functions`` order; ``seq[k]`` is its sequence number (creation order;
    ``AccumulateGrad`` has the largest). The engine starts from node 0; when a node
    has run, each input whose every consumer has now run joins a ready queue, and the
    ready node with the largest sequence number runs next. The queue is a
    ``std::priority_queue``: ties (several ``AccumulateGrad``) come out in the order
    its heap algorithm gives, so that is reproduced here step for step.

    Written by hand because no library gives this order; it spares a Python hook on
    every node of a large model's light blocks. The trace checks it against the
    order the hooked nodes reported (`explainer.trace.build`).
    """
    deps = [0] * len(children)
    for kids in children:
        for c, _ in kids:
            if c >= 0:
                deps[c] += 1
    heap = [0]
    order: list[int] = []
    while heap:
        k = _heap_pop(heap, seq)
        order.append(k)
        for c, _ in children[k]:
            if c >= 0:
                deps[c] -= 1
                if deps[c] == 0:
                    _heap_push(heap, c, seq)
    return order


def _sift_up(heap: list[int], hole: int, top: int, value: int, seq: list[int]) -> None:
    """libstdc++'s ``__push_heap``: max-heap on ``seq``, strict comparison."""
    parent = (hole - 1) // 2
    while hole > top and seq[heap[parent]] < seq[value]:
        heap[hole] = heap[parent]
        hole = parent
        parent = (hole - 1) // 2
    heap[hole] = value


def _heap_push(heap: list[int], value: int, seq: list[int]) -> None:
    heap.append(value)
    _sift_up(heap, len(heap) - 1, 0, value, seq)


def _heap_pop(heap: list[int], seq: list[int]) -> int:
    """libstdc++'s ``pop_heap`` (``__adjust_heap``: the hole goes down to a leaf, then up)."""
    top = heap[0]
    value = heap.pop()
    n = len(heap)
    if n == 0:
        return top
    hole = 0
    child = 0
    while child < (n - 1) // 2:
        child = 2 * (child + 1)
        if seq[heap[child]] < seq[heap[child - 1]]:
            child -= 1
        heap[hole] = heap[child]
        hole = child
    if n % 2 == 0 and child == (n - 2) // 2:
        child = 2 * (child + 1)
        heap[hole] = heap[child - 1]
        hole = child - 1
    _sift_up(heap, hole, 0, value, seq)
    return top
