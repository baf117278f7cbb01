"""mlgate.data"""
