"""Pareto fronts of many points in a few dimensions (all minimised), in chunks of numpy
comparisons: the front of a sample first removes most points (anything a point of the set
dominates is off the front), then the rest are compared chunk by chunk."""

from __future__ import annotations

import numpy

CHUNK = 1024
SAMPLE = 2048
FILTER_CHUNK = 4096


def _dominated_by(points: numpy.ndarray, others: numpy.ndarray) -> numpy.ndarray:
    """For each row of ``points``, whether some row of ``others`` is <= in every dimension
    and < in one."""
    if not len(others) or not len(points):
        return numpy.zeros(len(points), dtype=bool)
    no_worse = numpy.ones((len(points), len(others)), dtype=bool)
    same = numpy.ones_like(no_worse)
    for dimension in range(points.shape[1]):
        mine, theirs = points[:, dimension, None], others[None, :, dimension]
        no_worse &= theirs <= mine
        same &= theirs == mine
    found: numpy.ndarray = numpy.any(no_worse & ~same, axis=1)
    return found


def _exact_front(points: numpy.ndarray) -> numpy.ndarray:
    """The front by comparisons only, in lexicographic order of the values.

    Rows are sorted lexicographically first: a row can then be dominated only by one
    before it, so each chunk is checked against the front found so far and against itself."""
    if not len(points):
        return numpy.zeros(0, dtype=int)
    order = numpy.lexsort(points.T[::-1])
    ranked = points[order]
    front: list[numpy.ndarray] = []
    front_points = ranked[:0]
    for start in range(0, len(ranked), CHUNK):
        chunk = ranked[start:start + CHUNK]
        alive = ~_dominated_by(chunk, front_points)
        kept = numpy.flatnonzero(alive)
        survivors = chunk[kept]
        inside = ~_dominated_by(survivors, survivors)
        kept = kept[inside]
        front.append(order[start + kept])
        front_points = numpy.vstack([front_points, chunk[kept]])
    return numpy.concatenate(front)


def pareto_front(points: numpy.ndarray) -> numpy.ndarray:
    """Indices of the rows of ``points`` (n x d, every dimension minimised, no NaN) that no
    other row dominates. Equal points are all kept."""
    if len(points) <= 2 * SAMPLE:
        return _exact_front(points)
    sample = numpy.random.default_rng(0).choice(len(points), SAMPLE, replace=False)
    pivots = points[sample[_exact_front(points[sample])]]
    alive = numpy.concatenate([~_dominated_by(points[start:start + FILTER_CHUNK], pivots)
                               for start in range(0, len(points), FILTER_CHUNK)])
    survivors = numpy.flatnonzero(alive)
    front: numpy.ndarray = survivors[_exact_front(points[survivors])]
    return front
