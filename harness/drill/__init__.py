"""The drill engine: runs, scenario steps, disasters, detection, canaries, data."""
