"""Lightning callbacks of the suite."""
