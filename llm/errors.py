"""Errors of the model layer."""

from data.errors import QuantError


class ModelError(QuantError):
    """A model that cannot be found, loaded, or run as asked."""
