"""Loaded by schemathesis (scripts/schemathesis.toml, `hooks`) before it runs.

Hypothesis names a lambda in a report by re-parsing the source file that holds it. On CPython
before 3.11.8 and 3.12.2, a parse from deep in the stack can fail with "SystemError: AST
constructor recursion depth mismatch" (python/cpython#106905), which hypothesis does not
expect and which ends the operation's test as an error. A lambda's name is only a label, so
this answers "<unknown>" in that case instead.
"""

import hypothesis.internal.lambda_sources as lambda_sources

_describe = lambda_sources._lambda_description


def _describe_or_unknown(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_or_unknown
