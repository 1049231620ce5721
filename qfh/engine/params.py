"""Every constant of the original QFH engine, as one frozen parameter object.

The defaults are the values of the original C++ code (src/core/qfh.cpp at the commit read for
QFH_SPEC.md); QFH_SPEC.md section 11 lists them. Changing a value gives a variant of the engine,
never a silent change of the port: the golden tests run with the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QFHParams:
    """Constants of `QFHBasedProcessor::analyze` and its helpers (QFH_SPEC.md section 2)."""

    # Section 2.2: the 3-class entropy is divided by 1.585 (an approximation of log2(3)) and
    # clamped to [0.05, 1].
    entropy_normaliser: float = 1.585
    entropy_floor: float = 0.05
    entropy_ceiling: float = 1.0

    # Section 2.2: raw = 0.5*1.2*(1-H) + 0.3*1.1*(1-rupture) + 0.2*1.05*(1-flip); C0 = 1.1*raw^2.
    pattern_weight: float = 0.5
    pattern_boost: float = 1.2
    stability_weight: float = 0.3
    stability_boost: float = 1.1
    flip_weight: float = 0.2
    flip_boost: float = 1.05
    coherence_scale: float = 1.1

    # Section 2.2: the trajectory blend applies only to windows longer than 10 bits.
    trajectory_min_bits: int = 10
    trajectory_weight: float = 0.3
    base_coherence_weight: float = 0.7
    # If |V| < 2 the blended coherence is divided by 1 + 0.1*|V|.
    damping_guard: float = 2.0
    damping_coefficient: float = 0.1

    # Section 2.3: lambda = clamp(k1*H_l + k2*(1 - C_l), 0.01, 1) over the first 20 bits.
    local_window: int = 20
    lambda_entropy_weight: float = 0.30
    lambda_coherence_weight: float = 0.20
    lambda_min: float = 0.01
    lambda_max: float = 1.0
    # H_l when the local window has no events (a single bit); unreachable for windows > 10 bits.
    default_local_entropy: float = 0.5

    # Section 2.4: the exponential template decays as e^(-0.1 k); paths shorter than 3 score 0.5.
    exponential_template_rate: float = 0.1
    match_min_path: int = 3
    match_default_confidence: float = 0.5

    # Section 2.2: collapse_detected = rupture_ratio >= collapse_threshold (QFHOptions default).
    collapse_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.entropy_normaliser <= 0:
            raise ValueError(f"entropy_normaliser must be positive, got {self.entropy_normaliser}")
        if self.local_window < 2:
            raise ValueError(f"local_window must be at least 2 bits, got {self.local_window}")
        if self.trajectory_min_bits < 2:
            raise ValueError(
                f"trajectory_min_bits must be at least 2 (a path needs 3 points), "
                f"got {self.trajectory_min_bits}"
            )


DEFAULT_PARAMS = QFHParams()
