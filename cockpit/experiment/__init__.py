"""Experiment loops: agents improve a number unattended, the cockpit keeps score.

An experiment has an instructions file (`program.md`), a run command that prints a metric and a
budget. Each agent works in its own session (worktree + branch) and the cockpit drives its loop:
it sends the instructions with where the agent stands, waits for the turn to end, commits the
change, runs the command under a time limit, keeps the commit when the metric is strictly better
than that branch's best and resets it otherwise, and starts the next iteration until the budget
is spent. The loop belongs to the cockpit, not to the agent's memory, so it never stops early.

Modules: `definition` (the TOML schema and its checks), `results` (results.tsv), `state` (what a
restart needs), `gitops` (commit / restore in a worktree), `prompt` (what an agent is told),
`loop` (one agent's loop), `runner` (one experiment and the per-engine manager), `commands`
(the JSON commands). The package runs without a screen and imports no UI: the verbs
(`cockpit experiment …`) are in `cockpit.cli_experiment`, the example with scripted agents in
`cockpit.demo.experiment`, and `cockpit.features` registers the manager and the commands with
the engine.

Where things live: `$COCKPIT_HOME/experiments/<name>/` holds `results.tsv`, `state.json` and
`logs/<session>.log` (the latest run of each agent, `baseline.log` for the base commit). None of
it is in the repository, so no agent can edit its own score.
"""
