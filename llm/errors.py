"""Errors of the model layer."""

from data.errors import FrameworkError


class ModelError(FrameworkError):
    """A model that cannot be found, loaded, or run as asked."""
