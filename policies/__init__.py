"""Policies: operator-edited YAML that says how each request is recalled, injected and learned from."""

from policies.loader import PolicyError, load_policies, shipped_policies_dir
from policies.matcher import MatchContext, Policy, PolicySet
from policies.schema import (
    FEEDBACK_REASONS,
    FeedbackWantedConfig,
    LearnConfig,
    PolicySpec,
    PreferencesConfig,
    RecallConfig,
    RetireConfig,
)
from policies.store import PolicyStore

__all__ = [
    "FEEDBACK_REASONS",
    "FeedbackWantedConfig",
    "LearnConfig",
    "MatchContext",
    "Policy",
    "PolicyError",
    "PolicySet",
    "PolicySpec",
    "PolicyStore",
    "PreferencesConfig",
    "RecallConfig",
    "RetireConfig",
    "load_policies",
    "shipped_policies_dir",
]
