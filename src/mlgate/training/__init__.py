"""mlgate.training"""
