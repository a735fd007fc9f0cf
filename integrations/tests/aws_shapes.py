"""Validates documents against a shape of an AWS service model as botocore ships it (the
models the AWS SDKs and CLI are generated from), with the member names the SDKs and the CLI
use: GuardDuty's `Finding` (GetFindings output) and Security Hub's `AwsSecurityFinding`
(BatchImportFindings input).

Usage: aws_shapes.py SERVICE SHAPE [OPTIONAL,REQUIRED,MEMBERS] < documents.json
  The third argument names top-level required members a document may leave out.
Prints a JSON array with, for each document, its errors ("path: message"); exits 0 when it
could validate, 3 when botocore is missing.
"""
import json
import re
import sys
from datetime import datetime

try:
    from botocore.loaders import Loader
except ImportError as e:
    print(f"missing Python package: {e}", file=sys.stderr)
    sys.exit(3)


def check(shapes, shape_name, value, path, errors, excused=()):
    shape = shapes[shape_name]
    kind = shape["type"]
    where = path or "<root>"
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object ({shape_name})")
            return
        members = shape.get("members", {})
        for key, v in value.items():
            if key not in members:
                errors.append(f"{where}: unknown member {key!r} of {shape_name}")
            else:
                check(shapes, members[key]["shape"], v, f"{path}.{key}" if path else key, errors)
        for key in shape.get("required", []):
            if key not in value and key not in excused:
                errors.append(f"{where}: required member {key!r} of {shape_name} is missing")
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list ({shape_name})")
            return
        if "max" in shape and len(value) > shape["max"]:
            errors.append(f"{where}: more than {shape['max']} items")
        for i, v in enumerate(value):
            check(shapes, shape["member"]["shape"], v, f"{path}[{i}]", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a map ({shape_name})")
            return
        for k, v in value.items():
            check(shapes, shape["key"]["shape"], k, f"{path}<key>", errors)
            check(shapes, shape["value"]["shape"], v, f"{path}[{k!r}]", errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string ({shape_name})")
            return
        if "enum" in shape and value not in shape["enum"]:
            errors.append(f"{where}: {value!r} is not one of {shape['enum']}")
        if "min" in shape and len(value) < shape["min"]:
            errors.append(f"{where}: shorter than {shape['min']}")
        if "max" in shape and len(value) > shape["max"]:
            errors.append(f"{where}: longer than {shape['max']}")
        if "pattern" in shape and not re.search(shape["pattern"], value):
            errors.append(f"{where}: does not match {shape['pattern']!r}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{where}: expected an integer ({shape_name})")
        elif ("min" in shape and value < shape["min"]) or ("max" in shape and value > shape["max"]):
            errors.append(f"{where}: {value} out of range")
    elif kind in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{where}: expected a number ({shape_name})")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean ({shape_name})")
    elif kind == "timestamp":
        # The SDKs and the CLI write timestamps as ISO 8601 strings.
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            errors.append(f"{where}: {value!r} is not an ISO 8601 time")
    else:
        errors.append(f"{where}: shape type {kind} not checked")


def main() -> int:
    service, shape = sys.argv[1], sys.argv[2]
    excused = set(filter(None, sys.argv[3].split(","))) if len(sys.argv) > 3 else set()
    model = Loader().load_service_model(service, "service-2")
    shapes = model["shapes"]
    results = []
    for doc in json.load(sys.stdin):
        errors = []
        check(shapes, shape, doc, "", errors, excused)
        results.append(errors)
    json.dump(results, sys.stdout)
    return 0


sys.exit(main())
