"""The cockpit server: a per-user daemon that owns the engine, so agents outlive every screen.

- `protocol`: the JSON-lines JSON-RPC 2.0 wire format, shared with the clients (docs/protocol.md).
- `paths` and `lock`: the private run folder, the socket, and one engine per cockpit home.
- `listener`: the Unix socket server: requests, lossless attach, event forwarding.
- `daemon`: the process: foreground run, background start, stop.
- `bridge`: `cockpit rpc --stdio`, the protocol over ssh.
"""
