"""Helpers of the process-starting suites: stacks of real processes, tiny images, hostile requests."""
