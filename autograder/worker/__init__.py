"""Student code runs here, and only here: the fork server (zygote), the per-test worker and its
request loop, the sandbox it applies to itself, the op log that enforces bans, the loaders.
Imports only ``wire/`` and ``common/`` of ours (a pool copies exactly those into its own folder)."""
