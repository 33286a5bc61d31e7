"""What a DP fit promised and spent: plain data, saved with the generator (no torch needed to read it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class PrivacyReport:
    """What a DP fit promised and spent; stored with the generator and shown on its metadata and scorecard."""

    epsilon_requested: float
    epsilon_spent: float  # training (accountant) + preprocessing (noisy encoder statistics)
    epsilon_training: float
    epsilon_preprocessing: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    rows: int
    accountant: str = "rdp"
    private_modules: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # column -> where its encoder statistics came from
    frozen_parameters: list[str] = field(default_factory=list)  # kept at their initial value (no per-row grads)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PrivacyReport:
        return cls(**d)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow and Dagster metadata."""
        return {f"dp.{k}": float(v) for k, v in asdict(self).items() if isinstance(v, (int, float))}
