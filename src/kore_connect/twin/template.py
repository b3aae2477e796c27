"""The SAM template, as the local twin reads it, so that the twin and AWS cannot drift apart.

`template.yaml` describes the REST API (`AWS::Serverless::Api` with its `koreClientAuth`
authorizer), the functions behind it (`Events: Type: Api`) and each function's environment. This
module reads those facts into plain dataclasses: the API Gateway emulation serves exactly these
routes, with these authorizers, in front of these handlers.

Intrinsic functions are resolved the way a deployment would: `Ref` to a parameter gives the
value given for it (`parameters`, checked as CloudFormation checks them) or its default, `Ref` to
the table gives its name, `!Sub` with such names is substituted, `!If` follows the template's
conditions and `!Split` splits. A value that only AWS can know (a secret's ARN, another
resource's ARN) cannot be resolved locally and is left out; the twin supplies a local value
instead (`overrides`).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kore_connect.errors import KoreConnectError

TEMPLATE_NAME = "template.yaml"


class TemplateError(KoreConnectError):
    """The template is missing, is not YAML, or does not describe an API the twin can serve."""


@dataclass(frozen=True, slots=True)
class Authorizer:
    name: str  # koreClientAuth
    function: str  # the logical ID of the function behind it
    header: str  # the identity source: the request header holding the token
    cache_ttl_seconds: int  # authorizerResultTtlInSeconds (0 disables the cache)
    validation_expression: re.Pattern[str] | None = None  # identityValidationExpression, checked first


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # the resource path, e.g. /kore-metadata
    method: str  # POST
    function: str  # the logical ID of the integration function (Lambda proxy)
    authorizer: Authorizer | None


@dataclass(frozen=True, slots=True)
class Function:
    logical_id: str
    handler: str  # module.attribute
    timeout_seconds: int
    environment: Mapping[str, str]
    memory_mb: int = 128  # Lambda's default

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class SourceDeny:
    """A Deny statement of the API's resource policy on the caller's address (`aws:SourceIp`):
    `NotIpAddress` (outside=True) denies every address outside `networks`, `IpAddress` every one inside."""

    networks: tuple[Network, ...]
    outside: bool

    def denies(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return self.outside  # an address we cannot read is in no range
        inside = any(ip.version == n.version and ip in n for n in self.networks)
        return inside != self.outside


@dataclass(frozen=True, slots=True)
class ApiDescription:
    stage: str
    routes: tuple[Route, ...]
    functions: Mapping[str, Function] = field(default_factory=dict)
    source_denies: tuple[SourceDeny, ...] = ()  # the resource policy's explicit denies

    def denies_source(self, address: str) -> bool:
        return any(deny.denies(address) for deny in self.source_denies)

    def route(self, path: str, method: str) -> Route | None:
        # Exact, as API Gateway matches: methods are case-sensitive ("post" is not POST).
        for route in self.routes:
            if route.path == path and route.method == method:
                return route
        return None


def locate_template() -> Path:
    """template.yaml: shipped inside the package (a wheel), or at the repository root (a checkout)."""
    shipped = resources.files("kore_connect") / TEMPLATE_NAME
    if shipped.is_file():
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parents[3] / TEMPLATE_NAME
    if checkout.is_file():
        return checkout
    raise TemplateError(f"cannot find {TEMPLATE_NAME} in the package or the repository")


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, its short-form tags (`!Ref`, `!Sub`...) included."""
    path = path or locate_template()
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources")
    return document


def describe_api(template: Mapping[str, Any], parameters: Mapping[str, str] | None = None) -> ApiDescription:
    """The REST API of `template` deployed with `parameters` (the rest at their defaults): its stage,
    its routes with their authorizers, their functions, and its resource policy's source denies."""
    resolver = _Resolver(template, parameters or {})
    resources_ = template["Resources"]
    apis = {name: r for name, r in resources_.items() if r.get("Type") == "AWS::Serverless::Api"}
    if len(apis) != 1:
        raise TemplateError(f"expected one AWS::Serverless::Api in the template, found {len(apis)}")
    ((api_name, api),) = apis.items()
    api_properties = api.get("Properties", {})
    stage = str(resolver.resolve(api_properties.get("StageName", "Prod")))
    authorizers = _authorizers(api_properties.get("Auth", {}), resolver)
    default_authorizer = api_properties.get("Auth", {}).get("DefaultAuthorizer")

    routes = []
    functions = {}
    for name, resource in resources_.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        functions[name] = _function(name, resource, template, resolver)
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "Api" or event["Properties"].get("RestApiId") != {"Ref": api_name}:
                continue
            properties = event["Properties"]
            chosen = properties.get("Auth", {}).get("Authorizer", default_authorizer)
            if chosen not in (None, "NONE") and chosen not in authorizers:
                raise TemplateError(f"{name}: the authorizer {chosen!r} is not defined on {api_name}")
            routes.append(
                Route(
                    path=str(properties["Path"]),
                    method=str(properties["Method"]).upper(),
                    function=name,
                    authorizer=authorizers.get(chosen) if chosen not in (None, "NONE") else None,
                )
            )
    for authorizer in authorizers.values():
        if authorizer.function not in functions:
            raise TemplateError(f"the authorizer {authorizer.name} names no function of the template")
    return ApiDescription(
        stage=stage,
        routes=tuple(routes),
        functions=functions,
        source_denies=_source_denies(api_properties.get("Auth", {}).get("ResourcePolicy", {}), resolver),
    )


def _source_denies(policy: Any, resolver: _Resolver) -> tuple[SourceDeny, ...]:
    """The explicit denies on the caller's address, which API Gateway applies before the authorizer.
    An Allow changes nothing behind a Lambda authorizer (the authorizer's policy decides)."""
    if not isinstance(policy, Mapping):
        raise TemplateError("the API's Auth.ResourcePolicy must be a mapping")
    unknown = set(policy) - {"CustomStatements", "IpRangeWhitelist", "IpRangeBlacklist"}
    if unknown:
        raise TemplateError(
            f"the API's Auth.ResourcePolicy has {', '.join(sorted(unknown))}, which the twin does not serve"
        )
    denies = []
    for key, outside in (("IpRangeWhitelist", True), ("IpRangeBlacklist", False)):
        if key in policy:
            denies.append(SourceDeny(_networks(resolver.resolve_deep(policy[key]), key), outside))
    statements = resolver.resolve_deep(policy.get("CustomStatements", []))
    for statement in statements if isinstance(statements, list) else [statements]:
        if isinstance(statement, Mapping) and statement.get("Effect") == "Deny":
            denies.append(_deny_statement(statement))
    return tuple(denies)


def _deny_statement(statement: Mapping[str, Any]) -> SourceDeny:
    if statement.get("Principal") != "*" or statement.get("Action") not in (
        "execute-api:Invoke",
        ["execute-api:Invoke"],
    ):
        raise TemplateError(
            'the twin serves resource policy denies of execute-api:Invoke to Principal "*" only'
        )
    if statement.get("Resource") not in ("execute-api:/*", ["execute-api:/*"]):
        raise TemplateError("the twin serves resource policy denies on Resource execute-api:/* only")
    condition = statement.get("Condition", {})
    tests = dict(condition) if isinstance(condition, Mapping) else {}
    if len(tests) != 1 or next(iter(tests)) not in ("IpAddress", "NotIpAddress"):
        raise TemplateError(
            "the twin serves resource policy denies with one IpAddress or NotIpAddress condition"
        )
    ((operator, keys),) = tests.items()
    if not isinstance(keys, Mapping) or set(keys) != {"aws:SourceIp"}:
        raise TemplateError(f"the twin serves {operator} on aws:SourceIp only")
    return SourceDeny(_networks(keys["aws:SourceIp"], operator), outside=operator == "NotIpAddress")


def _networks(value: Any, where: str) -> tuple[Network, ...]:
    entries = value if isinstance(value, list) else [value]
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise TemplateError(f"{where}: {str(entry)!r} is not an IP address or CIDR range") from None
    return tuple(networks)


def _authorizers(auth: Mapping[str, Any], resolver: _Resolver) -> dict[str, Authorizer]:
    found = {}
    for name, spec in auth.get("Authorizers", {}).items():
        if spec.get("FunctionPayloadType", "TOKEN") != "TOKEN":
            raise TemplateError(
                f"the authorizer {name} is not a TOKEN authorizer, which is all the twin serves"
            )
        function_arn = spec.get("FunctionArn", {})
        if not (isinstance(function_arn, dict) and "Fn::GetAtt" in function_arn):
            raise TemplateError(f"the authorizer {name} must name its function with !GetAtt <Function>.Arn")
        identity = spec.get("Identity", {})
        expression = resolver.resolve(identity.get("ValidationExpression"))
        try:
            pattern = re.compile(expression) if isinstance(expression, str) and expression else None
        except re.error as exc:
            raise TemplateError(
                f"the authorizer {name}'s ValidationExpression is not a valid regex: {exc}"
            ) from None
        found[name] = Authorizer(
            name=name,
            function=str(function_arn["Fn::GetAtt"][0]),
            header=str(identity.get("Header", "Authorization")),
            cache_ttl_seconds=_whole(
                resolver.resolve(identity.get("ReauthorizeEvery", 300)), "ReauthorizeEvery"
            ),
            validation_expression=pattern,
        )
    return found


def _function(
    name: str, resource: Mapping[str, Any], template: Mapping[str, Any], resolver: _Resolver
) -> Function:
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = {**globals_, **resource.get("Properties", {})}
    variables = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
    }
    environment = {}
    for key, value in variables.items():
        resolved = resolver.resolve(value)
        if resolved is not _UNRESOLVED and resolved is not _NO_VALUE:
            environment[key] = str(resolved)
    return Function(
        logical_id=name,
        handler=str(properties["Handler"]),
        timeout_seconds=_whole(resolver.resolve(properties.get("Timeout", 3)), f"{name}'s Timeout"),
        environment=environment,
        memory_mb=_whole(resolver.resolve(properties.get("MemorySize", 128)), f"{name}'s MemorySize"),
    )


_UNRESOLVED: Any = object()  # a value only a real deployment knows
_NO_VALUE: Any = object()  # AWS::NoValue: the property or list item is left out


class _Resolver:
    """Resolves the intrinsic functions a deployment would, and nothing it could not."""

    def __init__(self, template: Mapping[str, Any], given: Mapping[str, str]) -> None:
        specs = template.get("Parameters", {})
        self._parameters = {name: spec.get("Default", _UNRESOLVED) for name, spec in specs.items()}
        for name, value in given.items():
            if name not in specs:
                known = ", ".join(sorted(specs))
                raise TemplateError(f"the template has no parameter {name!r} (it has {known})")
            self._parameters[name] = _checked_parameter(name, value, specs[name])
        self._conditions = template.get("Conditions", {})
        self._resources = template.get("Resources", {})
        self._pseudo = {
            "AWS::Region": "us-east-1",
            "AWS::Partition": "aws",
            "AWS::StackName": "kore-connect-local",
        }

    def resolve(self, value: Any) -> Any:
        if not isinstance(value, dict) or len(value) != 1:
            return value
        ((function, argument),) = value.items()
        if function != "Ref" and not function.startswith("Fn::"):
            return value  # a mapping with one key, not a function (a policy's Condition, say)
        if function == "Ref":
            return self._ref(str(argument))
        if function == "Fn::Sub" and isinstance(argument, str):
            return self._sub(argument)
        if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            return self.resolve(argument[1] if self.condition(str(argument[0])) else argument[2])
        if function == "Fn::Split" and isinstance(argument, list) and len(argument) == 2:
            text = self.resolve(argument[1])
            return text.split(argument[0]) if isinstance(text, str) else _UNRESOLVED
        return _UNRESOLVED

    def resolve_deep(self, value: Any) -> Any:
        """`value` with every intrinsic function inside it resolved, and AWS::NoValue left out."""
        value = self.resolve(value)
        if isinstance(value, list):
            items = [self.resolve_deep(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if isinstance(value, dict):
            entries = {key: self.resolve_deep(item) for key, item in value.items()}
            return {key: item for key, item in entries.items() if item is not _NO_VALUE}
        return value

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            raise TemplateError(f"the template uses the condition {name!r} but does not define it")
        return self._truth(self._conditions[name])

    def _truth(self, expression: Any) -> bool:
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self.condition(str(argument))
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item) for item in argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            if _UNRESOLVED in (left, right):
                raise TemplateError(f"the twin cannot decide the condition {expression}")
            return str(left) == str(right)
        raise TemplateError(f"the twin cannot decide the condition {expression}")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._parameters:
            return self._parameters[name]
        if name in self._pseudo:
            return self._pseudo[name]
        resource = self._resources.get(name, {})
        if resource.get("Type") == "AWS::DynamoDB::Table":  # Ref gives the table's name
            return self.resolve(resource.get("Properties", {}).get("TableName", _UNRESOLVED))
        return _UNRESOLVED

    def _sub(self, text: str) -> Any:
        names = re.findall(r"\$\{([^}!]+)\}", text)
        values = {name: self._ref(name) for name in names}
        if any(v is _UNRESOLVED for v in values.values()):
            return _UNRESOLVED
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(values[m.group(1)]), text)


def _whole(value: Any, what: str) -> int:
    """A whole number the template gives, refused as AWS would refuse it at deployment."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TemplateError(f"{what} must be a whole number, not {value!r}") from None
    if not number.is_integer():
        raise TemplateError(f"{what} must be a whole number, not {value!r}")
    return int(number)


def _checked_parameter(name: str, value: str, spec: Mapping[str, Any]) -> str:
    """`value`, refused as CloudFormation refuses it: not an allowed value, or not the pattern."""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        raise TemplateError(f"parameter {name}: {value!r} is not one of {', '.join(map(str, allowed))}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        reason = spec.get("ConstraintDescription", f"must match {pattern}")
        raise TemplateError(f"parameter {name}={value!r}: {reason}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r}: must be a number") from None
        if not math.isfinite(number):
            raise TemplateError(f"parameter {name}={value!r}: must be a number")
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (low is not None and number < low) or (high is not None and number > high):
            raise TemplateError(f"parameter {name}={value!r}: must be between {low} and {high}")
    return value


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short-form tags, turned into their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    function = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        scalar = loader.construct_scalar(node)
        value: Any = scalar.split(".", 1) if suffix == "GetAtt" else scalar
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {function: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)
