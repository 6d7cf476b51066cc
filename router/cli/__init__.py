"""The `payrouter` command: verbs in one module each, put together by `main.build_cli`."""
