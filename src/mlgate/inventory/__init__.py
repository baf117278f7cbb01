"""The model inventory: every model with its owner, risk tier, intended use, what runs where,
its last validation and next review date, built from the repository (model configs, the GitOps
repository's main) alone. `catalog` builds it, `review` dates the reviews, `render` prints it."""
