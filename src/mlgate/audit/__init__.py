"""mlgate.audit"""
