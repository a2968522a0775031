"""Constrained value types for the stack configuration.

Each type checks one domain rule and, when the value breaks it, raises a
``PydanticCustomError`` whose message says what is wrong and whose context
carries ``expected`` (what is allowed). ``components.config`` turns those into
the one-line ``flywheel:<key path>: ...`` errors users see.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
QUANTITY_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
# Units of the Rust `humantime` crate, which atticd uses to parse durations.
HUMANTIME_UNITS = {
    **dict.fromkeys(["nsec", "ns"], 1e-9),
    **dict.fromkeys(["usec", "us"], 1e-6),
    **dict.fromkeys(["msec", "ms"], 1e-3),
    **dict.fromkeys(["seconds", "second", "sec", "s"], 1.0),
    **dict.fromkeys(["minutes", "minute", "min", "m"], 60.0),
    **dict.fromkeys(["hours", "hour", "hr", "h"], 3600.0),
    **dict.fromkeys(["days", "day", "d"], 86400.0),
    **dict.fromkeys(["weeks", "week", "w"], 604800.0),
    **dict.fromkeys(["months", "month", "M"], 2630016.0),
    **dict.fromkeys(["years", "year", "y"], 31557600.0),
}
QUANTITY_EXPECTED = "a number with an optional suffix such as '500m', '2', '512Mi', '10Gi'"
HUMANTIME_EXPECTED = (
    "a humantime duration such as '30 days', '12h' or '1week 2days' (units s, m, h, d, w, M, y), "
    "or a whole number of seconds"
)
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS = 60, 86400
HUMANTIME_TOKEN = re.compile(r"\s*(\d+)\s*([A-Za-z]+)")
# GitLab's rule for masked CI/CD variable values (MASK_REGEX in GitLab's source).
GITLAB_MASKABLE = re.compile(r"^[a-zA-Z0-9_+=/@:.~-]{8,}$")
GITLAB_MASKABLE_RULE = (
    "one line of at least 8 characters from the Base64 alphabet (letters, digits, '+', '/', '=', '-', '_') "
    "plus '@', ':', '.', '~'"
)
GITLAB_VARIABLE_KEY = re.compile(r"^[a-zA-Z0-9_]{1,255}$")
# Kubernetes label keys and values (apimachinery validation.IsQualifiedName / IsValidLabelValue).
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
# Namespaces Kubernetes owns: `default` always exists and the `kube-` prefix is reserved for the system.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# What the Pulumi CLI passes for an unquoted YAML timestamp (Go's time.Time.String(), config/object.go:490).
GO_TIME_STRING = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? [+-]\d{4} \S+$")
TOML_INT_MAX = 2**63 - 1  # TOML integers are signed 64-bit (toml.io v1.0.0, "Integer")
ATTIC_CACHE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,50}$")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate(MONTHS)},
    ),
    ("day of week", 0, 7, {d: i for i, d in enumerate(WEEKDAYS)}),
)


def config_problem(message: str, expected: str, key: str | tuple[str | int, ...] | None = None) -> PydanticCustomError:
    """A config error: what is wrong and what is allowed. ``key`` names the offending field (or a path below
    it) when a model-level check (which pydantic reports at the model's path) raises it."""
    return PydanticCustomError("flywheel", message, {"expected": expected, "key": key})


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        raise config_problem(
            "not a DNS-1123 label",
            "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
        )
    return value


def check_namespace(value: str) -> str:
    check_dns_label(value)
    if value in RESERVED_NAMESPACES or value.startswith("kube-"):
        raise config_problem(
            "is a namespace Kubernetes owns", "a namespace of your own, not 'default' or one starting with 'kube-'"
        )
    return value


def check_label_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    # IsQualifiedName: with a '/', the prefix is required ("prefix part must be non-empty")
    if (slash and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix))) or not (
        len(name) <= 63 and LABEL_NAME.match(name)
    ):
        raise config_problem(
            "not a Kubernetes label key",
            "an optional DNS prefix and '/' (no '/' without a prefix), then at most 63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit, e.g. 'kubernetes.io/arch'",
        )
    return value


def check_label_value(value: str) -> str:
    if len(value) > 63 or not (value == "" or LABEL_NAME.match(value)):
        raise config_problem(
            "not a Kubernetes label value",
            "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        )
    return value


def check_hostname(value: str) -> str:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        raise config_problem("not a DNS host name", "a lowercase DNS name such as 'attic.example.com'")
    longest = max(value.split("."), key=len)
    # RFC 1035 2.3.4: labels are 63 octets or less (Kubernetes' IsDNS1123Subdomain checks only the total length)
    if len(longest) > 63:
        raise config_problem(
            f"a DNS label is {len(longest)} characters long", "a DNS name whose labels are at most 63 characters each"
        )
    return value


def parse_quantity(value: str) -> float:
    """Kubernetes resource quantity in base units (cores or bytes)."""
    match = QUANTITY.match(value)
    if match is None:
        raise ValueError(value)
    return float(match["number"]) * QUANTITY_FACTORS[match["suffix"]]


def quantity_from_number(value: object) -> object:
    """`pulumi config set --path K 4` stores the JSON number 4 (sdk/go/common/resource/config/value.go:145-160,
    object.go:570-595, v3.274.1), `--type float` or a hand-edited stack file a float: a quantity of that many units."""
    if isinstance(value, bool):
        raise config_problem("not a Kubernetes quantity", QUANTITY_EXPECTED)
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return value


def text_from_scalar(value: object) -> object:
    """The text the user typed back from what `--path` stored: it coerces only `true`, `false` and integers
    without a leading zero (object.go:570-595), so this is exact for those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def duration_from_number(value: object) -> object:
    """A number where a duration is expected (stored as one by `--path`, see above) is that many seconds."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise config_problem("not a duration", HUMANTIME_EXPECTED)
    if isinstance(value, int | float):
        return f"{int(value)}s"
    return value


def check_quantity(value: str) -> str:
    try:
        parse_quantity(value)
    except ValueError:
        raise config_problem("not a Kubernetes quantity", QUANTITY_EXPECTED) from None
    return value


def check_volume_size(value: str) -> str:
    # a PersistentVolumeClaim's storage request "must be greater than zero" (Kubernetes
    # pkg/apis/core/validation ValidatePersistentVolumeClaimSpec)
    if parse_quantity(value) <= 0:
        raise config_problem("a volume size of zero", "a quantity greater than zero, e.g. '10Gi'")
    return value


def parse_humantime(value: str) -> float:
    """Seconds in a humantime duration such as '30 days' or '1d 12h'."""
    position, total = 0, 0.0
    for match in HUMANTIME_TOKEN.finditer(value):
        if match.start() != position or match[2] not in HUMANTIME_UNITS:
            raise ValueError(value)
        total += int(match[1]) * HUMANTIME_UNITS[match[2]]
        position = match.end()
    if position == 0 or value[position:].strip():
        raise ValueError(value)
    return total


def check_humantime(value: str) -> str:
    try:
        parse_humantime(value)
    except ValueError:
        raise config_problem("not a duration", HUMANTIME_EXPECTED) from None
    return value


def check_timeout(value: str) -> str:
    seconds = parse_humantime(value)  # check_humantime ran first
    if not MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS:
        raise config_problem("timeout out of range", "a duration from '1m' to '24h'")
    return value


def check_cron(value: str) -> str:
    fields = value.split()
    expected = "a 5-field cron expression 'minute hour day-of-month month day-of-week', such as '15 3 * * *'"
    if len(fields) != 5:
        raise config_problem(f"has {len(fields)} fields, not 5", expected)
    for text, (field_name, low, high, names) in zip(fields, CRON_FIELDS, strict=True):
        if not _cron_field_ok(text, low, high, names):
            raise config_problem(f"invalid {field_name} field '{text}' (allowed {low}-{high})", expected)
    return value


def _cron_field_ok(text: str, low: int, high: int, names: dict[str, int]) -> bool:
    def number(token: str) -> int | None:
        if token.upper() in names:
            return names[token.upper()]
        return int(token) if token.isdigit() else None

    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return False
        if base == "*":
            continue
        start, _, end = base.partition("-")
        bounds = [number(start)] + ([number(end)] if end else [])
        if any(b is None or not low <= b <= high for b in bounds):
            return False
        if end and bounds[0] > bounds[1]:  # type: ignore[operator]
            return False
    return True


def check_bucket_name(value: str) -> str:
    expected = (
        "3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, "
        "not an IP address, no '..', no 'xn--'/'sthree-' prefix or '-s3alias'/'--ol-s3' suffix"
    )
    problems = []
    if not 3 <= len(value) <= 63:
        problems.append(f"is {len(value)} characters long")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", value):
        problems.append("has characters or ends that S3 does not allow")
    if ".." in value:
        problems.append("contains '..'")
    if value.startswith(("xn--", "sthree-")) or value.endswith(("-s3alias", "--ol-s3")):
        problems.append("uses a reserved prefix or suffix")
    try:
        ipaddress.ip_address(value)
        problems.append("is formatted as an IP address")
    except ValueError:
        pass
    if problems:
        raise config_problem("not a valid S3 bucket name: " + ", ".join(problems), expected)
    return value


def check_http_url(value: str) -> str:
    if re.match(r"https?://[^/\s]*@", value):
        raise config_problem(
            "has credentials in the URL", "a URL without 'user:password@' (credentials belong in secret config)"
        )
    if not re.fullmatch(r"https?://[^\s/:@]+(:\d{1,5})?(/[^\s]*)?", value):
        raise config_problem(
            "not an http(s) URL with a scheme", "a URL such as 'https://s3.example.com' or 'http://10.0.0.5:9000'"
        )
    return value.rstrip("/")


def check_endpoint_url(value: str) -> str:
    """An S3 endpoint: scheme, host and port only (clients add the bucket and key paths themselves)."""
    value = check_http_url(value)
    if re.fullmatch(r"https?://[^/]+/.+", value):
        raise config_problem("has a path", "scheme, host and optional port only, such as 'https://s3.example.com:9000'")
    return value


def check_attic_cache_name(value: str) -> str:
    if not ATTIC_CACHE_NAME.match(value):
        raise config_problem("not a valid Attic cache name", "1-50 characters of letters, digits, '-' and '_'")
    return value


def check_image(value: str) -> str:
    expected = "a pinned image reference 'registry/name:tag' or 'name@sha256:...', never ':latest'"
    name, _, digest = value.partition("@")
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?", value):
        raise config_problem("not an image reference", expected)
    if not digest and not tag:
        raise config_problem("image has no tag or digest", expected)
    if tag == "latest" and not digest:
        raise config_problem("image uses the moving ':latest' tag", expected)
    return value


def check_gitlab_variable_key(value: str) -> str:
    if not GITLAB_VARIABLE_KEY.match(value):
        raise config_problem("not a valid GitLab CI/CD variable key", "1-255 characters of letters, digits and '_'")
    return value


def check_maskable(value: str) -> str:
    """GitLab refuses to mask values outside this rule; check before sending."""
    if not GITLAB_MASKABLE.match(value):
        raise config_problem("value cannot be masked by GitLab", GITLAB_MASKABLE_RULE)
    return value


DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
Namespace = Annotated[str, AfterValidator(check_namespace)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, BeforeValidator(text_from_scalar), AfterValidator(check_label_value)]
Hostname = Annotated[str, AfterValidator(check_hostname)]
CliText = Annotated[str, BeforeValidator(text_from_scalar)]
Quantity = Annotated[str, BeforeValidator(quantity_from_number), AfterValidator(check_quantity)]
VolumeSize = Annotated[Quantity, AfterValidator(check_volume_size)]
Humantime = Annotated[str, BeforeValidator(duration_from_number), AfterValidator(check_humantime)]
# How long `pulumi up` waits for something to become ready (and a Job may run).
Timeout = Annotated[Humantime, AfterValidator(check_timeout)]
CronSchedule = Annotated[str, AfterValidator(check_cron)]
BucketName = Annotated[str, AfterValidator(check_bucket_name)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
EndpointUrl = Annotated[str, AfterValidator(check_endpoint_url)]
AtticCacheName = Annotated[str, AfterValidator(check_attic_cache_name)]
Image = Annotated[str, AfterValidator(check_image)]
GitlabVariableKey = Annotated[str, AfterValidator(check_gitlab_variable_key)]
