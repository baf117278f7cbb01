"""mlgate.features"""
