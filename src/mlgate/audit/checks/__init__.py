"""Checks `mlgate audit verify` runs. Every module in this package is imported by
`mlgate.audit.verify.registered_checks` and registers its checks with
`@mlgate.audit.verify.register_check(...)`; a new check is a new module here, nothing else."""
