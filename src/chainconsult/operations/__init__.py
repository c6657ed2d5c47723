"""What operators use: detailed health, /metrics, alerts and the /status dashboard. A domain
folder (not infra) because it decides who may see them, which needs accounts."""
