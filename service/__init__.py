"""Code both the API and the worker use, without torch: settings, job store, results, queue."""
