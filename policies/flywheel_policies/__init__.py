"""flywheel's CrossGuard policies: a stack whose cache configuration is wrong is refused.

Self-contained on purpose (pulumi_policy, the standard library and PyYAML only) and importing its own
modules relatively: the policy host runs ``policies/__main__.py`` with ``policies/`` as its import root
(``import flywheel_policies``), while tests and tools import ``policies.flywheel_policies`` from the repository root.

Every policy reads only inputs, tolerates missing properties, and treats a value that is unknown during
preview as "cannot judge yet" (the analyzer runs again with known values on ``pulumi up``). One module per
concern: ``runners``, ``contract``, ``attic``, ``configmap_secrets``, ``ci_variables``, ``storage``,
``template``, ``images``, ``bazel``, ``mounted_files``, ``network``; ``common`` and ``workloads`` hold what they share.
"""

from __future__ import annotations

from pulumi_policy import Policy

from .attic import ATTIC_GC_PRESENT
from .bazel import BAZEL_CACHE_CAPACITY
from .ci_variables import CI_TOKEN_MASKED
from .configmap_secrets import ATTIC_SECRETS_OUT_OF_CONFIGMAPS
from .contract import CONTRACT_CONSISTENT, CONTRACT_NOT_SHADOWED
from .images import IMAGES_PINNED
from .mounted_files import MOUNTED_FILES_READABLE
from .network import NETWORK_LEAST_ACCESS
from .runners import RUNNER_CACHE_CONTRACT, RUNNER_LIMITS, RUNNER_PRIVILEGED_EXPLICIT, RUNNER_SERVICE_SIZES
from .storage import STORAGE_PRIVATE_AND_KEPT
from .template import GREEDY_TEMPLATE_SHAPE

# Mandatory policies first, then advisory ones; the order is what `pulumi preview` lists.
POLICIES: list[Policy] = [
    RUNNER_CACHE_CONTRACT,
    CONTRACT_NOT_SHADOWED,
    CONTRACT_CONSISTENT,
    ATTIC_GC_PRESENT,
    ATTIC_SECRETS_OUT_OF_CONFIGMAPS,
    CI_TOKEN_MASKED,
    STORAGE_PRIVATE_AND_KEPT,
    GREEDY_TEMPLATE_SHAPE,
    MOUNTED_FILES_READABLE,
    NETWORK_LEAST_ACCESS,
    RUNNER_PRIVILEGED_EXPLICIT,
    RUNNER_LIMITS,
    RUNNER_SERVICE_SIZES,
    BAZEL_CACHE_CAPACITY,
    IMAGES_PINNED,
]

__all__ = ["POLICIES"]
