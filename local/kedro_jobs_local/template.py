"""template.yaml read as CloudFormation reads it: its short tags (!Ref, !Sub, ...) and just
enough of its intrinsic functions, parameters and rules to resolve what the local stack
creates and the tests check. Only PyYAML: it runs in LocalStack's own Python too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEFAULT_STACK = "kedro-jobs"
DEFAULT_ACCOUNT = "123456789012"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
NO_VALUE: Any = object()  # what AWS::NoValue resolves to: the caller drops the key


# libyaml's parser where PyYAML was built with it: ~8x less CPU for the template (~70 ms in
# pure Python, read by each `make dev` start and its sweeper).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):
    """PyYAML loader that reads CloudFormation's short tags (!Ref, !Sub, ...) as the long
    form ({"Ref": ...}, {"Fn::Sub": ...})."""


def _tag(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _short in ("Ref", "Condition"):
    _CfnLoader.add_constructor(f"!{_short}", _tag(_short))
for _short in (
    "Sub", "GetAtt", "Join", "If", "Equals", "Not", "And", "Or", "Select", "Split",
    "FindInMap", "ImportValue", "Base64", "GetAZs", "Cidr",
):  # fmt: skip
    _CfnLoader.add_constructor(f"!{_short}", _tag(f"Fn::{_short}"))


def load_template(path: Path | None = None) -> dict[str, Any]:
    with (path or TEMPLATE).open() as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - safe subclass
    return data


class Resolver:
    """Just enough of CloudFormation's intrinsic functions for the template's resources."""

    def __init__(
        self, template: dict[str, Any], stack: str, region: str, overrides: dict[str, str]
    ) -> None:
        self.template = template
        self.refs: dict[str, Any] = {
            "AWS::StackName": stack,
            "AWS::Region": region,
            "AWS::AccountId": DEFAULT_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        unknown = set(overrides) - set(template.get("Parameters", {}))
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        for name, spec in template.get("Parameters", {}).items():
            value = str(overrides.get(name, spec.get("Default", "")))
            _check_parameter(name, value, spec)
            self.refs[name] = value
        self.attrs: dict[tuple[str, str], Any] = {}

    def condition(self, name: str) -> bool:
        return bool(self(self.template.get("Conditions", {})[name]))

    def check_rules(self) -> None:
        """The template's Rules, as CloudFormation checks them before it creates anything."""
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not self(assertion["Assert"]):
                    reason = assertion.get("AssertDescription", "")
                    raise ValueError(f"template rule {name} fails: {reason}")

    def __call__(self, value: Any) -> Any:
        # AWS::NoValue removes the key or list item it is the value of, as in CloudFormation.
        if isinstance(value, list):
            return [r for r in map(self, value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        key = next(iter(value), "")
        if len(value) != 1 or not (key in ("Ref", "Condition") or key.startswith("Fn::")):
            return {k: r for k, v in value.items() if (r := self(v)) is not NO_VALUE}
        arg = value[key]
        if key == "Ref":
            return self.refs[arg]
        if key == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.attrs[(logical, attr)]
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
            return _substitute(text, lambda name: extra[name] if name in extra else self._sub(name))
        if key == "Fn::Join":
            return str(arg[0]).join(str(self(v)) for v in self(arg[1]))
        if key == "Fn::Split":
            return str(self(arg[1])).split(arg[0])
        if key == "Fn::Select":
            return self(arg[1])[int(self(arg[0]))]
        if key == "Fn::If":
            return self(arg[1] if self.condition(arg[0]) else arg[2])
        if key == "Fn::And":
            return all(self(v) for v in arg)
        if key == "Fn::Or":
            return any(self(v) for v in arg)
        if key == "Fn::Equals":
            return str(self(arg[0])) == str(self(arg[1]))
        if key == "Fn::Not":
            return not self(arg[0])
        if key == "Fn::FindInMap":
            mapping, top, second = (self(a) for a in arg)
            return self.template["Mappings"][mapping][str(top)][second]
        if key == "Condition":
            return self.condition(arg)
        return {key: self(arg)}  # not one of these: left as it is

    def _sub(self, name: str) -> Any:
        if "." in name:
            logical, attr = name.split(".", 1)
            return self.attrs[(logical, attr)]
        return self.refs[name]


def resolve_value(
    value: Any,
    *,
    template: dict[str, Any] | None = None,
    parameter_overrides: dict[str, str] | None = None,
    stack_name: str = DEFAULT_STACK,
    region: str = "us-east-1",
) -> Any:
    """A template value as CloudFormation would deploy it with these parameters (tests use it
    to check conditional parts). Resource references are not known here: KeyError."""
    template = template if template is not None else load_template()
    resolver = Resolver(template, stack_name, region, dict(parameter_overrides or {}))
    resolver.check_rules()
    return resolver(value)


def _check_parameter(name: str, value: str, spec: dict[str, Any]) -> None:
    """What CloudFormation checks of a parameter value, so a bad override fails here too."""
    allowed = [str(v) for v in spec.get("AllowedValues", [])]
    if allowed and value not in allowed:
        raise ValueError(f"parameter {name}={value} is not one of {allowed}")
    if spec.get("Type") == "Number":
        number = float(value)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise ValueError(f"parameter {name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise ValueError(f"parameter {name}={value} is above {spec['MaxValue']}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ValueError(f"parameter {name}={value} does not match {pattern}")


def _substitute(text: str, lookup: Any) -> str:
    out, i = [], 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            out.append(text[i:])
            break
        end = text.index("}", start)
        out.append(text[i:start])
        out.append(str(lookup(text[start + 2 : end])))
        i = end + 1
    return "".join(out)
