"""The answer engine: variant → retrieve → generate → decide, one turn at a time."""
