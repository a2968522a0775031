"""flywheel: the shared build-cache platform for the greedy build pattern.

Load and validate the whole `flywheel:` config first (nothing is registered when it is
invalid), build the Platform, export its outputs.
"""

import pulumi

from components.config import ConfigError, load_from_pulumi
from components.platform import Platform

try:
    config = load_from_pulumi()
except ConfigError as error:
    # RunError ends the program with just this message: one line per problem, no traceback.
    raise pulumi.RunError("invalid stack configuration:\n" + "\n".join(error.problems)) from None

platform = Platform("flywheel", config)
for output_name, value in sorted(platform.outputs.items()):
    pulumi.export(output_name, value)
