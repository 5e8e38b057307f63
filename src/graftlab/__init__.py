"""graftlab: graft a pretrained model (the rootstock) onto your task, offline."""

__version__ = "0.1.0"
