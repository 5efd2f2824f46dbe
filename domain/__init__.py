"""Contracts shared by the API, the workflows and the activities.

Everything in this package is sandbox-safe: pydantic models, enums and pure functions only.
"""
