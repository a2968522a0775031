"""Stand-in Pulumi resource provider plugins (gitlab 10.4.0, random 4.21.4, tls 5.6.2), not the real ones.

The real plugins are Go programs the Go module proxy here cannot build (their modules are not served).
``bin/pulumi-resource-<name>`` launches ``python -m lab.providers <name>``, which serves the engine's
``ResourceProvider`` gRPC protocol for exactly the resource types this program uses.
"""
