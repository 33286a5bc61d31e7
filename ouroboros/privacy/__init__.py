"""Differential privacy: DP-SGD training of the torch generators, private encoder statistics, chain ε.

See docs/privacy.md for what is private and what is public.
"""

from ouroboros.privacy.settings import DPSettings, PublicColumn
from ouroboros.privacy.report import PrivacyReport

__all__ = ["DPSettings", "PrivacyReport", "PublicColumn"]
