"""The local Kore.ai voice gateway and bot: what Kore's Voice Gateway, CCAI configuration and bot
do with a call that Amazon Connect transfers to them.

- `session`: one call's Kore session in embedded V8 (mini-racer), with Kore's script-node objects;
- `templates`: `{{context...}}` and `{{env...}}` placeholders, as Kore renders them;
- `dialog`: the bot's dialog as data (message, script, service and agent-transfer nodes);
- `dialog_config`: the bot's flows as the gateway's YAML writes them;
- `bot`: runs a call's Start Flow and dialog, and says how the call ends (the agent transfer's BYE);
- `config`: the gateway's settings (`serve gateway`'s YAML), checked;
- `gateway`: the voice gateway (a SIP UAS on `twin/sip`): which calls it takes, and their records;
- `call`: one call in progress: its answers, its bot, its BYE;
- `media`: the call's RTP port, which counts what the caller sends;
- `interactions`: the calls' records (Kore's interaction log: each node's result, the media
  count), their JSON form, and their private SQLite file.
"""
