"""Clients of a cockpit: what the screen and the scriptable CLI talk to, wherever the engine runs.

One protocol (`api.CockpitClient`), two transports: in-process, where the `Engine` itself is the
client, and the server's protocol over a Unix socket or an ssh pipe (`remote.RemoteClient`).
`multi.MultiClient` merges several remote cockpits into one, each session labelled with its
host. `cli` holds the CLI verbs (`ls`, `new`, `send`, `wait` …) written against that protocol.
"""
