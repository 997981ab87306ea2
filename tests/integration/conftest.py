"""Fixtures shared by integration modules: the gateway stack (gateway_stack.py)."""

from tests.integration.gateway_stack import stack

__all__ = ["stack"]
