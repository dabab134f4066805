"""Plans: a conductor session splits a task into sub-tasks that run as parallel sessions.

`model` is the plan itself (pure, JSON-able), `store` keeps it under the cockpit home,
`manager` is the engine's service that starts, watches and lands a plan's sessions, `commands`
its JSON commands, and `conductor` the built-in agent whose tools are those commands.
"""
