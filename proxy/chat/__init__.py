"""The request path: check the body, identify the caller, plan (policy, recall, injection),
forward, and record the turn's one outcome."""
