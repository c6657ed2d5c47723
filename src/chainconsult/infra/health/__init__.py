"""Health endpoints for load balancers and people."""
