"""The plan judging the tests share with ``agentstate check-plans`` (it lives in the library)."""

from agentstate.sqlite.plans import plan_details, plan_problems

__all__ = ["plan_details", "plan_problems"]
