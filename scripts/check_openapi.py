#!/usr/bin/env python3
"""Checks the services' OpenAPI documents against what the services do.

Usage: check_openapi.py CHECK.json

CHECK.json holds, per service, the document the service served, its route table (method, path, roles) and
samples of real answers (method, path template, status, body). The check fails when
- a document is not a valid OpenAPI document (openapi-spec-validator),
- the documented operations differ from the route table, an operation lacks the token security scheme, or
  documents 403 when every role may call it (or not when some may not),
- a real answer's status is not documented for its operation, or its body does not match the documented
  schema (openapi-schema-validator, OpenAPI 3.0 semantics),
- a documented example does not match its own schema.
"""

import json
import sys

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_document

ALL_ROLES = {"merchant", "analyst", "admin"}


def validator(document, schema):
    """A validator for `schema` whose `#/components/...` references resolve in the document."""
    return OAS30Validator({**schema, "components": document["components"]})


def check_service(name, service, problems):
    document = service["document"]
    validate_document(document)

    documented = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            documented[(method.upper(), path)] = operation
    table = {(route["method"], "/api" + route["path"]): route for route in service["routes"]}
    for key in sorted(set(table) - set(documented)):
        problems.append(f"{name}: {key} is served but not documented")
    for key in sorted(set(documented) - set(table)):
        problems.append(f"{name}: {key} is documented but not served")
    for key, route in table.items():
        operation = documented.get(key)
        if operation is None:
            continue
        if {"token": []} not in operation.get("security", []):
            problems.append(f"{name}: {key} does not document the token security scheme")
        restricted = set(route["roles"]) != ALL_ROLES
        if restricted != ("403" in operation["responses"]):
            problems.append(f"{name}: {key} allows {route['roles']} but documents 403: {not restricted}")
        if "401" not in operation["responses"]:
            problems.append(f"{name}: {key} does not document 401")

    for schema_name, schema in document["components"]["schemas"].items():
        if "example" in schema:
            for error in validator(document, schema).iter_errors(schema["example"]):
                problems.append(f"{name}: the example of {schema_name} does not match it: {error.message}")

    checked = 0
    for sample in service["samples"]:
        key = (sample["method"], "/api" + sample["path"])
        what = f"{name}: {key[0]} {key[1]} answered {sample['status']}"
        operation = documented.get(key)
        if operation is None:
            problems.append(f"{what}, but the operation is not documented")
            continue
        response = operation["responses"].get(str(sample["status"]))
        if response is None:
            problems.append(f"{what}, which is not documented (documented: {sorted(operation['responses'])})")
            continue
        content = response.get("content", {}).get("application/json")
        if content is None:
            if sample["body"] is not None:
                problems.append(f"{what} with a body, but documents none")
            continue
        try:
            validator(document, content["schema"]).validate(sample["body"])
        except ValidationError as error:
            path = "/".join(str(part) for part in error.absolute_path)
            problems.append(f"{what} with a body that does not match: {error.message} at '{path}'")
        else:
            checked += 1
    return len(documented), checked


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        check = json.load(file)
    problems = []
    for name, service in check.items():
        operations, checked = check_service(name, service, problems)
        print(f"{name}: valid OpenAPI {service['document']['openapi']}, {operations} operations, "
              f"{checked} real answers matched their documented schemas")
    for problem in problems:
        print("PROBLEM:", problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
