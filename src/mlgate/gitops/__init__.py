"""mlgate.gitops"""
