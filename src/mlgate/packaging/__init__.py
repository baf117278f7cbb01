"""mlgate.packaging"""
