"""The lineage contract: what mlgate writes into git, MLflow and the workspace, and reads back.

Commit trailers and change kinds (`trailers`), MLflow model-version tags (`tags`), image build
records (`builds`), the policy a model is judged under (`policy`) and the values all of them
carry (`values`: safe text, canonical version numbers). Each has one writer and one parser, so
nothing another module writes can be read differently here, and a value that could change the
meaning of a record (a newline that starts a new trailer) is refused before it is written.
"""
