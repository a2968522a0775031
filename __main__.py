"""flywheel: the shared build-cache platform for the greedy build pattern.

Load and validate the whole `flywheel:` config first (nothing is registered when it is
invalid), build the Platform, export its outputs.
"""

import pulumi

from components.config import load_from_pulumi
from components.platform import Platform

config = load_from_pulumi()  # invalid config raises ConfigError, a RunError: one line per problem, no traceback
platform = Platform("flywheel", config)
for output_name, value in sorted(platform.outputs.items()):
    pulumi.export(output_name, value)
