"""Stand-in for pulumi-random 4.21.4 (bridging hashicorp/terraform-provider-random): RandomPassword, RandomString.

Schema facts from terraform-provider-random ``internal/provider/resource_password.go`` passwordSchemaV3()
and ``resource_string.go``: every input RequiresReplace; special/upper/lower/numeric default true,
min_* default 0; RandomPassword's result and bcrypt_hash are Sensitive, RandomString's result is not
(its id is the result). Generation follows ``internal/random/string.go`` CreateString.
"""

from __future__ import annotations

import secrets
from typing import ClassVar

import bcrypt

from lab.providers.model import Package, Properties, ResourceType

NUMERIC = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
INPUTS = (
    "keepers",
    "length",
    "special",
    "upper",
    "lower",
    "number",
    "numeric",
    "minNumeric",
    "minUpper",
    "minLower",
    "minSpecial",
    "overrideSpecial",
)


def create_string(inputs: Properties) -> str:
    """internal/random/string.go CreateString: the minimums first, the rest from the enabled sets, shuffled."""
    special = inputs.get("overrideSpecial") or SPECIAL
    chars = "".join(
        charset
        for charset, enabled in ((UPPER, "upper"), (LOWER, "lower"), (NUMERIC, "numeric"), (special, "special"))
        if inputs.get(enabled, True)
    )
    minimums = ((NUMERIC, "minNumeric"), (LOWER, "minLower"), (UPPER, "minUpper"), (special, "minSpecial"))
    result = [secrets.choice(charset) for charset, key in minimums for _ in range(int(inputs.get(key, 0)))]
    result += [secrets.choice(chars) for _ in range(int(inputs["length"]) - len(result))]
    order = [secrets.randbelow(256) for _ in result]
    return "".join(c for _, c in sorted(zip(order, result, strict=True), key=lambda pair: pair[0]))


class RandomStringType(ResourceType):
    pulumi_type = "random:index/randomString:RandomString"
    defaults: ClassVar[Properties] = {
        "special": True,
        "upper": True,
        "lower": True,
        "minNumeric": 0,
        "minUpper": 0,
        "minLower": 0,
        "minSpecial": 0,
    }
    replace_on_changes = frozenset(INPUTS)
    computed_outputs: ClassVar[tuple[str, ...]] = ("result",)

    def normalize(self, inputs: Properties) -> Properties:
        # NumberNumericAttributePlanModifier: `number` (deprecated) and `numeric` mirror each other, default true
        flag = inputs.get("numeric", inputs.get("number", True))
        return {**inputs, "numeric": inputs.get("numeric", flag), "number": inputs.get("number", flag)}

    def check(self, inputs: Properties) -> list[tuple[str, str]]:
        if "length" not in inputs:
            return []  # unknown during preview
        length = inputs["length"]
        if not isinstance(length, float | int) or length < 1:
            return [("length", f"length must be at least 1, got {length!r}")]
        needed = sum(int(inputs.get(k, 0)) for k in ("minUpper", "minLower", "minNumeric", "minSpecial"))
        if length < needed:
            return [("length", f"length {length:g} is below the sum of the min_* values ({needed})")]
        return []

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        result = create_string(inputs)
        return result, {**inputs, "result": result}


class RandomPasswordType(RandomStringType):
    pulumi_type = "random:index/randomPassword:RandomPassword"
    secret_outputs = frozenset({"result", "bcryptHash"})
    computed_outputs: ClassVar[tuple[str, ...]] = ("result", "bcryptHash")

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        result = create_string(inputs)
        # golang.org/x/crypto/bcrypt GenerateFromPassword(DefaultCost=10) writes the $2a$ prefix
        hashed = bcrypt.hashpw(result.encode(), bcrypt.gensalt(10, prefix=b"2a")).decode()
        # resource_password.go Create: ID is the constant "none"
        return "none", {**inputs, "result": result, "bcryptHash": hashed}


class RandomPackage(Package):
    name = "random"
    version = "4.21.4"


def package() -> RandomPackage:
    return RandomPackage([RandomStringType(), RandomPasswordType()])
