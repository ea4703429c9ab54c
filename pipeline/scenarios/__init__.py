"""Policy scenarios: the same night decided under several policies, compared side by side."""
