"""The local Kore.ai voice gateway and bot: what Kore's Voice Gateway, CCAI configuration and bot
do with a call that Amazon Connect transfers to them.

- `session`: one call's Kore session in embedded V8 (mini-racer), with Kore's script-node objects;
- `templates`: `{{context...}}` and `{{env...}}` placeholders, as Kore renders them;
- `dialog`: the bot's dialog as data (message, script, service and agent-transfer nodes);
- `bot`: runs a call's Start Flow and dialog, and says how the call ends (the agent transfer's BYE).
"""
