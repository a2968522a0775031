"""The flywheel policy pack: `pulumi preview --policy-pack policies`. Only assembles the pack.

The policy host runs this file with this folder as its import root, so the policies package is
imported as a top-level sibling (tests and tools import it as ``policies.flywheel_policies``).
"""

from flywheel_policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="flywheel-cache-policies",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Refuses stacks whose shared build-cache configuration is wrong (flywheel).",
)
