"""The plan judging the tests share with ``agentstate check-plans`` (it lives in the library)."""

from agentstate.sqlite.query_plans import plan_details, plan_problems

__all__ = ["plan_details", "plan_problems"]
