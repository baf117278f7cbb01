"""Demo steps, one module per capability; each defines `STEP = DemoStep(order=..., ...)`."""
