"""Run a rendered pod's real binary the way the kubelet and the image would, and probe it as the pod says.

- `images`: what each pinned image contributes (entrypoint, user, workdir, its own startup logic), cited.
- `pod`: a rendered pod spec materialised into a launch plan (volumes with their modes and fsGroup,
  env, args, the process identity).
- `network`: a node network namespace with a bridge; each pod gets its own namespace, address and loopback.
- `launch`: inside a private mount namespace, builds the container's root filesystem, chroots, drops to the
  container's identity with setpriv and execs the binary.
- `probe`: the pod's readiness probe, run from the node's network namespace against the pod's address.
- `workload`: start, wait ready, stop; what a test uses.

Needs root (mount and network namespaces, chown); it is a lab, not a kubelet: no cgroups, no image layers
(the host's /usr and /lib stand in for the image's), no restarts.
"""
