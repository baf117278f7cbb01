"""Canary analysis: the gates on the traffic a prod canary actually served."""
