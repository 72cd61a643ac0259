"""Independent pandas/numpy reference implementations ("oracles") of the feature families."""
