"""Policies: operator-edited YAML that says how each request is recalled, injected and learned from."""

from policies.loader import PolicyError, load_policies, shipped_policies_dir
from policies.matcher import MatchContext, PolicySet
from policies.schema import LearnConfig, Policy, RecallConfig
from policies.store import PolicyStore

__all__ = [
    "LearnConfig",
    "MatchContext",
    "Policy",
    "PolicyError",
    "PolicySet",
    "PolicyStore",
    "RecallConfig",
    "load_policies",
    "shipped_policies_dir",
]
