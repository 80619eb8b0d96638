"""RFC 6902 JSON Patch (the `jsonpatch` package) and RFC 7386 JSON Merge Patch, applied to a copy.

Callers catch one error type, PatchError, whatever went wrong: a malformed patch, a path that is not there,
a failed `test` operation.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer


class PatchError(Exception):
    """The patch document is malformed or does not apply to the target."""


def apply_json_patch(doc: Any, operations: Any) -> Any:
    """`doc` with the operations applied; `doc` itself is never changed."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be an array of operations")
    result = copy.deepcopy(doc)
    try:
        # One operation at a time, to say which one failed without echoing the document, in the words of
        # Argo CD's evanphx/json-patch.
        for op in operations:
            try:
                result = jsonpatch.JsonPatch([op]).apply(result, in_place=True)
            except jsonpatch.JsonPatchTestFailed as exc:
                raise PatchError(f"testing value {op.get('path')} failed: test failed") from exc
            except jsonpatch.JsonPatchConflict as exc:
                raise PatchError(f"{op.get('op')} operation does not apply: {exc}") from exc
            except jsonpointer.JsonPointerException as exc:
                raise PatchError(
                    f"{op.get('op')} operation does not apply: doc is missing path: {op.get('path')}"
                ) from exc
        return result
    except jsonpatch.JsonPatchException as exc:
        raise PatchError(str(exc)) from exc
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        # The package lets some malformed operations through to Python errors (an operation that is not an
        # object, a path that is not a string…): they are the patch's fault all the same.
        raise PatchError(f"invalid json patch: {exc}") from exc


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
