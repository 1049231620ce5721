"""A scalar QFH reference written from QFH_SPEC.md section 2, one window at a time.

Plain Python floats (IEEE double), no arrays, no shortcuts: every quantity is computed the way
the spec describes it (events, ratios, a damped sum term by term, explicit templates). The
batched engine is tested against this file, so it deliberately shares no code with it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

NULL, FLIP, RUPTURE = "null", "flip", "rupture"


@dataclass(frozen=True)
class ReferenceResult:
    null_count: int
    flip_count: int
    rupture_count: int
    entropy: float
    coherence: float
    rupture_ratio: float
    flip_ratio: float
    collapse: bool
    damped_value: float
    trajectory_confidence: float
    base_coherence: float
    decay: float


def transitions(bits: list[int]) -> list[str]:
    """Section 2.1: one event per adjacent pair: 00 null, 01/10 flip, 11 rupture."""
    events = []
    for previous, current in itertools.pairwise(bits):
        if previous == 0 and current == 0:
            events.append(NULL)
        elif previous == 1 and current == 1:
            events.append(RUPTURE)
        else:
            events.append(FLIP)
    return events


def normalised_entropy(events: list[str]) -> float:
    """Section 2.2: -sum p log2 p over the three classes, / 1.585, clamped to [0.05, 1]."""
    total = len(events)
    entropy = 0.0
    for state in (NULL, FLIP, RUPTURE):
        share = events.count(state) / total
        if share > 0:
            entropy -= share * math.log2(share)
    return min(1.0, max(0.05, entropy / 1.585))


def integrate_future_trajectories(bits: list[int]) -> tuple[float, list[float], float]:
    """Section 2.3 with i = 0: (V, path, lambda)."""
    local = bits[: min(20, len(bits))]
    local_events = transitions(local)
    local_entropy = normalised_entropy(local_events) if local_events else 0.5
    local_coherence = 1.0 - local_entropy
    decay = min(1.0, max(0.01, 0.30 * local_entropy + 0.20 * (1.0 - local_coherence)))
    value = 0.0
    path = [float(bits[0])]
    for j in range(1, len(bits)):
        value += (bits[j] - bits[0]) * math.exp(-decay * j)
        path.append(value)
    return value, path, decay


def cosine_similarity(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm_a = math.sqrt(sum(x * x for x in a))
    norm_b = math.sqrt(sum(y * y for y in b))
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    return dot / (norm_a * norm_b)


def match_known_paths(path: list[float]) -> float:
    """Section 2.4: best cosine against exponential, linear and sinusoid templates."""
    n = len(path)
    if n < 3:
        return 0.5
    first, last = path[0], path[-1]
    exponential = [first * math.exp(-0.1 * k) for k in range(n)]
    slope = (last - first) / (n - 1)
    linear = [first + slope * k for k in range(n)]
    mean, amplitude = (first + last) / 2.0, (last - first) / 2.0
    sinusoid = [mean + amplitude * math.sin(2.0 * math.pi * k / n) for k in range(n)]
    best = 0.0
    for template in (exponential, linear, sinusoid):
        best = max(best, cosine_similarity(path, template))
    return max(0.0, min(1.0, best))


def analyze(bits: list[int], collapse_threshold: float = 0.5) -> ReferenceResult:
    """`QFHBasedProcessor::analyze(bits)` (section 2.2)."""
    events = transitions(bits)
    if not events:
        return ReferenceResult(0, 0, 0, 0.0, 0.0, 0.0, 0.0, False, 0.0, 0.0, 0.0, 0.0)
    total = len(events)
    rupture = events.count(RUPTURE) / total
    flip = events.count(FLIP) / total
    entropy = normalised_entropy(events)
    raw = 0.5 * 1.2 * (1 - entropy) + 0.3 * 1.1 * (1 - rupture) + 0.2 * 1.05 * (1 - flip)
    base = min(1.0, max(0.0, 1.1 * raw * raw))
    coherence, value, confidence, decay = base, 0.0, 0.0, 0.0
    if len(bits) > 10:
        value, path, decay = integrate_future_trajectories(bits)
        confidence = match_known_paths(path)
        coherence = 0.3 * confidence + 0.7 * base
        if abs(value) < 2:
            coherence = coherence / (1 + 0.1 * abs(value))
        coherence = min(1.0, max(0.0, coherence))
    return ReferenceResult(
        null_count=events.count(NULL),
        flip_count=events.count(FLIP),
        rupture_count=events.count(RUPTURE),
        entropy=entropy,
        coherence=coherence,
        rupture_ratio=rupture,
        flip_ratio=flip,
        collapse=rupture >= collapse_threshold,
        damped_value=value,
        trajectory_confidence=confidence,
        base_coherence=base,
        decay=decay,
    )
