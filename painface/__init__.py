"""painface: synthesize and assess facial expressions of pain."""

__version__ = "0.1.0"
