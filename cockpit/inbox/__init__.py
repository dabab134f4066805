"""The approval inbox: every pending approval of every session (and host) in one list,
grouped by what is asked, answered a group at a time; and rules learnt from past answers.

`shapes` reads what a request asks (pure), `groups` groups requests and past answers (pure),
`rules` adds a shell rule to a repository's `.cockpit.toml`, `service` is the engine feature
that serves all of it as JSON commands.
"""
