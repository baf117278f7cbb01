"""mlgate.serving"""
