"""mlgate.canary"""
