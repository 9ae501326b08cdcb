"""The compiler: trace -> IR -> passes -> generated code (imports framework, never the
reverse). Entry points: :func:`compiler.capture.capture_graph` and
``framework.compile`` (see :mod:`framework.compile_api`)."""
