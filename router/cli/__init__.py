"""The `payrouter` command: its verbs, and serving the router and simulators."""
