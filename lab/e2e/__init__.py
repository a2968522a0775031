"""`make e2e`: the real Pulumi engine against a real Kubernetes API server, on loopback."""
