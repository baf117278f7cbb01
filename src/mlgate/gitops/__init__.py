"""GitOps: what runs where is written in git, changed only by reviewed commits.

repo (the remote + working clone), overlay (release.yaml edits), promote / canary / rollback
(changes as PRs), pr (open, list, merge under four-eyes rules), status (read main), aliases
(MLflow mirrors git), validate (render + check manifests), github (PRs through the REST API).
"""
