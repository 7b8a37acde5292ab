"""RefitFunction's entry point: the handler lives in the core library (the CoreLayer), not here."""

from visual_search.aws.handlers import refit_handler as lambda_handler

__all__ = ["lambda_handler"]
