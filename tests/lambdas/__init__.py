"""Handlers for testing the local Lambda runtime and the API Gateway emulation."""
