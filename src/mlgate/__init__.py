"""mlgate: take credit-risk and fraud models from training to production, the GitOps way."""

__version__ = "0.1.0"
