"""The `accelpool up` process: REST API (uvicorn) + the shared Reconciler loop + an executor."""
