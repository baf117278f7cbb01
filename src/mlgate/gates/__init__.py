"""mlgate.gates"""
