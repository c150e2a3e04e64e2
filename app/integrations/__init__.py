"""Adapters that let other frameworks use supportbot's components.

The adapters need their framework installed (``langchain-core`` for
:mod:`app.integrations.langchain`); importing this package imports none of them.
"""
