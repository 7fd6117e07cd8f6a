"""`ensemble schema`: the JSON Schema of a record, for tools that read the JSONL output."""

import json


def schema() -> None:
    """Print the JSON Schema of one record (one line of the JSONL output)."""
    from ..schema import record_schema

    print(json.dumps(record_schema(), indent=2))
